"""Garbage collection of meta.db records and backend objects (containerd's §13 rules).

Modules: ``labels`` (GC label keys), ``graph`` (meta.db as a reference graph),
``mark`` (tri-colour marking with remembered paths), ``changes`` (change log
during a run), ``sweep`` (the write transactions), ``backend`` (blobs, ingests,
snapshots), ``collector`` (one run, dry runs, explain), ``scheduler`` (when to
run), ``plugin`` / ``service`` (daemon wiring and ``GC.*`` RPC).
"""

from .collector import Collector, Explanation, GCReport, Removed, Step
from .graph import Graph, load
from .mark import Marking, mark
from .nodes import COLLECTIBLE, KINDS, Node

__all__ = [
    "COLLECTIBLE", "KINDS", "Collector", "Explanation", "GCReport", "Graph", "Marking", "Node", "Removed", "Step",
    "load", "mark",
]
