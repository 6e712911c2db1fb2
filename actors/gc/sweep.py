"""The sweep: in short write transactions, delete what marking left white.

Marking ran on a snapshot outside the lock, so writes may have landed since.
They are in the change log (changes.py): every inserted or updated record, and
every new lease resource, is treated as a root for this run, and whatever it
reaches through the *current* rows that the snapshot's marking had not already
followed is kept too.  So a record created meanwhile (content committed under a
lease, a label added that points at a white blob) always survives, and the lock
is held only for the few point reads that delta needs plus the deletes: never
for a second full mark.

The white records are deleted in chunks, one write transaction each, so other
requests run between them.  Each chunk first folds in the writes logged since
the previous one; logging stops with the last chunk.  Every transaction only
deletes unreachable records, so meta.db is consistent after any of them (a
crash between chunks is a collection that did less; the next run finishes).
Deletes of records already gone (removed by their owner meanwhile) are skipped
and not reported.
"""

from __future__ import annotations

import sqlite3

from actors.metadata.db import WriteTx

from . import changes
from .graph import read_node, record_edges, resource_node
from .mark import Marking
from .nodes import CONTENT, IMAGE, INGEST, LEASE, SNAPSHOT, Node

CHUNK = 256  # deletes per write transaction


class Delta:
    """Nodes kept because of writes after the snapshot (beyond what marking kept)."""

    def __init__(self, marking: Marking, now: int) -> None:
        self.marking = marking
        self.now = now
        self.changed: set[Node] = set()
        self.kept: set[Node] = set()
        self._seen: set[tuple[Node, bool]] = set()

    def absorb(self, conn: sqlite3.Connection, log: list[tuple[str, str, str, str]]) -> None:
        """Fold logged writes in, following edges through the rows as they are now."""
        stack: list[tuple[Node, bool]] = []
        for kind, ns, key, extra in log:
            if kind == changes.RESOURCE:
                node = resource_node(ns, extra, key)
                if node is None:
                    continue
            else:
                node = Node(kind, ns, key)
                self.changed.add(node)
                self._seen.discard((node, True))
            self._seen.discard((node, False))  # changed again: look at its edges again
            stack.append((node, False))
        marked, full = self.marking.marked, self.marking.full
        extra_edges = self.marking.graph.extra_edges
        while stack:
            state = stack.pop()
            if state in self._seen:
                continue
            self._seen.add(state)
            node, flat = state
            if node not in self.changed and (node in full or (flat and node in marked)):
                continue  # the snapshot's marking already followed these very edges
            self.kept.add(node)
            if not flat:
                stack.extend((target, False) for target, _ in extra_edges.get(node, ()))
            record, resources = read_node(conn, node, self.now)
            if record is not None:
                stack.extend((target, target_flat) for target, target_flat, _ in
                             record_edges(node, record, flat, resources))


def delete_record(tx: WriteTx, node: Node) -> bool:
    """Delete one record; False if it was already gone."""
    ns, key = node.namespace, node.key
    if node.kind == CONTENT:
        cur = tx.execute("DELETE FROM content WHERE namespace = ? AND digest = ?", (ns, key))
    elif node.kind == IMAGE:
        cur = tx.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (ns, key))
    elif node.kind == INGEST:
        cur = tx.execute("DELETE FROM ingests WHERE namespace = ? AND ref = ?", (ns, key))
    elif node.kind == SNAPSHOT:
        sn, _, name = key.partition("/")
        cur = tx.execute("DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?", (ns, sn, name))
    elif node.kind == LEASE:
        cur = tx.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (ns, key))
        tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ?", (ns, key))
    else:
        return False
    return cur.rowcount > 0


class Sweep:
    """The deletes of one run, a chunk per ``step`` (each inside its own write transaction)."""

    def __init__(self, marking: Marking, now: int, chunk: int | None = None) -> None:
        self.delta = Delta(marking, now)
        candidates = marking.unmarked()
        chunk = chunk or CHUNK
        self.chunks = [candidates[i:i + chunk] for i in range(0, len(candidates), chunk)]

    def step(self, tx: WriteTx, index: int) -> list[Node]:
        last = index == len(self.chunks) - 1
        log = changes.take(tx.conn, stop=last)
        if log:
            self.delta.absorb(tx.conn, log)
        kept = self.delta.kept
        return [node for node in self.chunks[index] if node not in kept and delete_record(tx, node)]
