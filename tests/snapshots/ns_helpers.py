"""A NamespacedSnapshotter over a real meta.db and a real backend, for the namespaced-layer tests."""

from __future__ import annotations

import os

import attrs

from actors.metadata.db import MetadataDB, dump_labels, now_ns
from actors.snapshots import NativeSnapshotter, OverlaySnapshotter
from actors.snapshots.metadata import NamespacedSnapshotter
from wire.converter import unstructure

BACKENDS = {"overlayfs": OverlaySnapshotter, "native": NativeSnapshotter}


class Recorder:
    """Stands in for the event exchange: keeps (namespace, topic, event map)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict]] = []

    def publish(self, namespace: str, topic: str, event) -> None:
        self.events.append((namespace, topic, event if isinstance(event, dict) else unstructure(event)))

    def topics(self) -> list[str]:
        return [t for _, t, _ in self.events]


@attrs.define(eq=False)
class World:
    db: MetadataDB
    backend: object
    store: NamespacedSnapshotter
    events: Recorder
    deletions: list[bool]

    def close(self) -> None:
        self.backend.close()
        self.db.close()


def make_world(root: str, name: str = "overlayfs", backend=None, **kw) -> World:
    db = MetadataDB(os.path.join(root, "meta", "meta.db"))
    if backend is None:
        backend = BACKENDS[name](os.path.join(root, name))
    events = Recorder()
    deletions: list[bool] = []
    db.add_listener(deletions.append)
    store = NamespacedSnapshotter(name=name, backend=backend, db=db, events=events, **kw)
    return World(db=db, backend=backend, store=store, events=events, deletions=deletions)


def add_lease(db: MetadataDB, ns: str, lease: str, labels: dict | None = None) -> None:
    with db.write() as tx:
        tx.ensure_namespace(ns)
        tx.execute("INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)",
                   (ns, lease, dump_labels(labels or {}), now_ns()))


def lease_resources(db: MetadataDB, ns: str, lease: str) -> set[tuple[str, str]]:
    with db.read() as conn:
        return {(r["type"], r["id"]) for r in conn.execute(
            "SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ?", (ns, lease))}


def rows(db: MetadataDB) -> list[tuple]:
    """Every snapshot row, for "nothing changed" checks."""
    with db.read() as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT namespace, snapshotter, key, backend_key, parent, kind, pending, labels, created_at, updated_at"
            " FROM snapshots ORDER BY namespace, snapshotter, key")]


def backend_keys(backend) -> list[str]:
    found = []
    backend.walk(lambda info: found.append(info.name))
    return sorted(found)


def backend_key_of(db: MetadataDB, ns: str, key: str, snapshotter: str = "overlayfs") -> str:
    with db.read() as conn:
        return conn.execute("SELECT backend_key FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                            (ns, snapshotter, key)).fetchone()[0]
