"""The reference graph of meta.db as one read transaction saw it.

``load(conn, now)`` reads every table once and records, per node, what its
edges need (labels, parent, target, expected, container snapshot, lease
resources).  Roots, back-references and conditional references are found while
loading (they need a scan of every labelled record, as containerd's
``scanRoots``); forward edges are produced on demand by ``edges``.

Flat traversal (``containerd.io/gc.flat`` leases) follows only snapshot
parents and image targets, never labels or back-references, as containerd's
flat node types do.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from typing import Iterator

import attrs

from . import labels as gclabels
from .nodes import CONTAINER, CONTENT, IMAGE, INGEST, LEASE, SANDBOX, SNAPSHOT, Node, snapshot_node


@attrs.define(slots=True, eq=False)
class Record:
    """What one row contributes to the graph."""

    labels_text: str = "{}"
    parent: Node | None = None  # snapshot parent; image target; ingest expected; container snapshot
    backend: str = ""  # snapshots: backend key; ingests: backend ref; content: the digest
    flat: bool = False  # leases
    expired: bool = False  # leases and images
    created_at: int = 0
    _labels: dict[str, str] | None = None

    @property
    def labels(self) -> dict[str, str]:
        if self._labels is None:
            self._labels = _parse_labels(self.labels_text)
        return self._labels


def _parse_labels(text: str) -> dict[str, str]:
    if not text or gclabels.GC_LABEL_MARK not in text:
        return {}  # fast path: no GC label can be in there
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def image_target_digest(target: str) -> str:
    """The digest of an image's ``target`` column (a JSON descriptor or a bare digest)."""
    text = (target or "").strip()
    if text.startswith("{"):
        try:
            desc = json.loads(text)
        except ValueError:
            return ""
        return str(desc.get("digest", "")) if isinstance(desc, dict) else ""
    return text


def container_snapshot(record_text: str) -> tuple[str, str]:
    try:
        record = json.loads(record_text)
    except ValueError:
        return "", ""
    if not isinstance(record, dict):
        return "", ""
    return str(record.get("snapshotter") or ""), str(record.get("snapshot_key") or "")


Edge = tuple[Node, bool, str]  # (target, flat, how)


@attrs.define(eq=False)
class Graph:
    now: int
    records: dict[Node, Record] = attrs.Factory(dict)
    roots: list[Edge] = attrs.Factory(list)  # (root, flat, why it is a root)
    extra_edges: dict[Node, list[tuple[Node, str]]] = attrs.Factory(lambda: defaultdict(list))
    lease_resources: dict[Node, list[Node]] = attrs.Factory(lambda: defaultdict(list))

    def edges(self, node: Node, flat: bool) -> Iterator[Edge]:
        """What ``node`` keeps alive, reached flat or not."""
        record = self.records.get(node)
        if not flat:
            for target, how in self.extra_edges.get(node, ()):
                yield target, False, how
        if record is None:
            return  # a dangling reference: the named object does not exist
        yield from record_edges(node, record, flat, self.lease_resources.get(node, ()))


def record_edges(node: Node, record: Record, flat: bool, resources=()) -> Iterator[Edge]:
    """Edges read from the record itself (no back-references)."""
    kind = node.kind
    if kind == LEASE:
        for target in resources:
            yield target, record.flat, "held by lease" + (" (flat)" if record.flat else "")
        return
    if kind == SNAPSHOT and record.parent is not None:
        yield record.parent, flat, "parent"
    elif kind == IMAGE and record.parent is not None:
        yield record.parent, flat, "image target"
    elif kind == INGEST and record.parent is not None:
        yield record.parent, False, "expected by ingest"
    elif kind == CONTAINER and record.parent is not None:
        yield record.parent, False, "container snapshot"
    if flat:
        return
    for target, key in gclabels.refs(node.namespace, record.labels):
        yield target, False, f"label {key}"


def resource_node(namespace: str, rtype: str, rid: str) -> Node | None:
    """A lease resource row as a node (types of actors/metadata/leases.py)."""
    if rtype == "content":
        return Node(CONTENT, namespace, rid)
    if rtype == "ingests":
        return Node(INGEST, namespace, rid)
    if rtype == "images":
        return Node(IMAGE, namespace, rid)
    if rtype.startswith("snapshots/"):
        return snapshot_node(namespace, rtype[len("snapshots/"):], rid)
    return None


def _content_row(ns, digest, labels_text, created_at) -> tuple[Node, Record]:
    return Node(CONTENT, ns, digest), Record(labels_text=labels_text, backend=digest, created_at=created_at)


def load(conn: sqlite3.Connection, now: int) -> Graph:
    """Read the whole graph through ``conn`` (the caller holds one read transaction)."""
    g = Graph(now=now)
    records = g.records
    roots = g.roots
    conditions: list[tuple[Node, Node, str, object]] = []
    usedats: dict[Node, int] = {}

    def back(holder: Node, labels: dict[str, str]) -> None:
        for source, key in gclabels.back_refs(holder.namespace, labels):
            g.extra_edges[source].append((holder, f"back-reference label {key} on {holder.kind} {holder.key}"))

    def conditional(holder: Node, labels: dict[str, str]) -> None:
        for snap, key, test in gclabels.conditional_refs(holder.namespace, labels):
            conditions.append((holder, snap, key, test))

    for ns, lease_id, labels_text, created_at in conn.execute(
            "SELECT namespace, id, labels, created_at FROM leases"):
        node = Node(LEASE, ns, lease_id)
        rec = Record(labels_text=labels_text, created_at=created_at)
        rec.flat = gclabels.LABEL_GC_FLAT in rec.labels
        rec.expired = gclabels.expired(rec.labels, now)
        records[node] = rec
        if not rec.expired:
            roots.append((node, False, "unexpired lease" + (" (flat)" if rec.flat else "")))
    for ns, lease_id, rtype, rid in conn.execute("SELECT namespace, lease, type, id FROM lease_resources"):
        target = resource_node(ns, rtype, rid)
        if target is not None:
            g.lease_resources[Node(LEASE, ns, lease_id)].append(target)

    for ns, name, target, labels_text, created_at in conn.execute(
            "SELECT namespace, name, target, labels, created_at FROM images"):
        node = Node(IMAGE, ns, name)
        digest = image_target_digest(target)
        rec = Record(labels_text=labels_text, parent=Node(CONTENT, ns, digest) if digest else None,
                     created_at=created_at)
        rec.expired = gclabels.expired(rec.labels, now)
        records[node] = rec
        if rec.expired:
            back(node, rec.labels)
        else:
            roots.append((node, False, "image"))
        conditional(node, rec.labels)

    for ns, ref, backend_ref, expected, expire_at in conn.execute(
            "SELECT namespace, ref, backend_ref, expected, expire_at FROM ingests"):
        node = Node(INGEST, ns, ref)
        records[node] = Record(parent=Node(CONTENT, ns, expected) if expected else None, backend=backend_ref)
        if expire_at and expire_at > now:
            roots.append((node, False, "ingest not yet expired"))

    for row in conn.execute("SELECT namespace, digest, labels, created_at FROM content"):
        node, rec = _content_row(*row)
        records[node] = rec
        labels = rec.labels
        if labels:
            root_key = gclabels.has_root_label(labels)
            if root_key:
                roots.append((node, False, f"label {root_key}"))
            back(node, labels)
            conditional(node, labels)

    columns = {r[1] for r in conn.execute("PRAGMA table_info(snapshots)")}
    pending = "pending" if "pending" in columns else "''"
    for ns, sn, key, backend_key, parent, labels_text, created_at, in_flight in conn.execute(
            "SELECT namespace, snapshotter, key, backend_key, parent, labels, created_at, "
            f"{pending} FROM snapshots"):
        node = snapshot_node(ns, sn, key)
        rec = Record(labels_text=labels_text, parent=snapshot_node(ns, sn, parent) if parent else None,
                     backend=backend_key, created_at=created_at)
        records[node] = rec
        if in_flight:
            roots.append((node, False, f"snapshot being created ({in_flight})"))
        labels = rec.labels
        if labels:
            root_key = gclabels.has_root_label(labels)
            if root_key:
                roots.append((node, False, f"label {root_key}"))
            back(node, labels)
            used = gclabels.usedat(labels)
            if used is not None:
                usedats[node] = used

    for ns, cid, record_text, labels_text in conn.execute(
            "SELECT namespace, id, record, labels FROM containers"):
        node = Node(CONTAINER, ns, cid)
        sn, skey = container_snapshot(record_text)
        rec = Record(labels_text=labels_text, parent=snapshot_node(ns, sn, skey) if sn and skey else None)
        records[node] = rec
        roots.append((node, False, "container"))
        back(node, rec.labels)

    for ns, sid, labels_text in conn.execute("SELECT namespace, id, labels FROM sandboxes"):
        node = Node(SANDBOX, ns, sid)
        records[node] = Record(labels_text=labels_text)
        roots.append((node, False, "sandbox"))

    for holder, snap, key, test in conditions:
        used = usedats.get(snap)
        if used is not None and test(used, now):
            g.extra_edges[holder].append((snap, f"conditional label {key}"))
    return g


def read_node(conn: sqlite3.Connection, node: Node, now: int) -> tuple[Record | None, list[Node]]:
    """One node's current record (and a lease's resources), by primary key."""
    ns, key = node.namespace, node.key
    kind = node.kind
    if kind == CONTENT:
        row = conn.execute("SELECT labels FROM content WHERE namespace = ? AND digest = ?", (ns, key)).fetchone()
        return (Record(labels_text=row[0], backend=key) if row else None), []
    if kind == IMAGE:
        row = conn.execute("SELECT target, labels FROM images WHERE namespace = ? AND name = ?", (ns, key)).fetchone()
        if row is None:
            return None, []
        digest = image_target_digest(row[0])
        return Record(labels_text=row[1], parent=Node(CONTENT, ns, digest) if digest else None), []
    if kind == INGEST:
        row = conn.execute("SELECT expected FROM ingests WHERE namespace = ? AND ref = ?", (ns, key)).fetchone()
        if row is None:
            return None, []
        return Record(parent=Node(CONTENT, ns, row[0]) if row[0] else None), []
    if kind == SNAPSHOT:
        sn, _, name = key.partition("/")
        row = conn.execute("SELECT parent, labels FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                           (ns, sn, name)).fetchone()
        if row is None:
            return None, []
        return Record(labels_text=row[1], parent=snapshot_node(ns, sn, row[0]) if row[0] else None), []
    if kind == CONTAINER:
        row = conn.execute("SELECT record, labels FROM containers WHERE namespace = ? AND id = ?", (ns, key)).fetchone()
        if row is None:
            return None, []
        sn, skey = container_snapshot(row[0])
        return Record(labels_text=row[1], parent=snapshot_node(ns, sn, skey) if sn and skey else None), []
    if kind == SANDBOX:
        row = conn.execute("SELECT labels FROM sandboxes WHERE namespace = ? AND id = ?", (ns, key)).fetchone()
        return (Record(labels_text=row[0]) if row else None), []
    if kind == LEASE:
        row = conn.execute("SELECT labels FROM leases WHERE namespace = ? AND id = ?", (ns, key)).fetchone()
        if row is None:
            return None, []
        rec = Record(labels_text=row[0])
        rec.flat = gclabels.LABEL_GC_FLAT in rec.labels
        resources = [resource_node(ns, t, i) for t, i in conn.execute(
            "SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ?", (ns, key))]
        return rec, [r for r in resources if r is not None]
    return None, []
