"""The sweep: inside one short write transaction, delete what marking left white.

Marking ran on a snapshot outside the lock.  Writes that committed since then
are in the change log (changes.py); every inserted or updated record, and every
new lease resource, is treated as a root for this run, and whatever it reaches
through the *current* rows, that the snapshot's marking had not already
followed, is kept too.  So a record created meanwhile (say content committed
under a lease, or a label added that points at a white blob) always survives,
and the lock is held only for the few point reads that delta needs plus the
deletes: never for a second full mark.  Deletes of records that are already
gone (removed by their owner meanwhile) are skipped, not reported.
"""

from __future__ import annotations

import sqlite3

from actors.metadata.db import WriteTx

from . import changes
from .graph import read_node, record_edges, resource_node
from .mark import Marking
from .nodes import CONTENT, IMAGE, INGEST, LEASE, SNAPSHOT, Node


def kept_since_snapshot(conn: sqlite3.Connection, marking: Marking, log: list[tuple[str, str, str, str]],
                        now: int) -> set[Node]:
    """Nodes to keep because of writes after the snapshot (beyond what marking kept)."""
    changed: set[Node] = set()
    stack: list[tuple[Node, bool]] = []
    for kind, ns, key, extra in log:
        if kind == changes.RESOURCE:
            node = resource_node(ns, extra, key)
            if node is not None:
                stack.append((node, False))
        else:
            node = Node(kind, ns, key)
            changed.add(node)
            stack.append((node, False))
    extra_edges = marking.graph.extra_edges
    kept: set[Node] = set()
    seen: set[tuple[Node, bool]] = set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        node, flat = state
        if node not in changed and (node in marking.full or (flat and node in marking.marked)):
            continue  # the snapshot's marking already followed these very edges
        kept.add(node)
        if not flat:
            stack.extend((target, False) for target, _ in extra_edges.get(node, ()))
        record, resources = read_node(conn, node, now)
        if record is not None:
            stack.extend((target, target_flat) for target, target_flat, _ in
                         record_edges(node, record, flat, resources))
    return kept


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


def sweep(tx: WriteTx, marking: Marking, now: int) -> list[Node]:
    """Delete the white records that no write since the snapshot revived; returns them."""
    log = changes.take(tx.conn)
    candidates = marking.unmarked()
    if not candidates:
        return []
    kept = kept_since_snapshot(tx.conn, marking, log, now) if log else set()
    return [node for node in candidates if node not in kept and delete_record(tx, node)]
