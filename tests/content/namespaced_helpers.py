"""Helpers for the namespaced content store tests: a real meta.db and LocalStore in tmp_path."""

from __future__ import annotations

import hashlib
import os

import attrs

from actors.content import LocalStore
from actors.content.metadata import NamespacedContent
from actors.metadata.db import MetadataDB, now_ns


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.define
class RecordingEvents:
    """Stands in for the event exchange: records (namespace, topic, event)."""

    published: list = attrs.Factory(list)

    def publish(self, namespace, topic, event) -> None:
        self.published.append((namespace, topic, event))

    def topics(self) -> list[str]:
        return [topic for _, topic, _ in self.published]


def make_store(tmp_path, *, policy: str = "shared") -> NamespacedContent:
    db = MetadataDB(str(tmp_path / "io.dockyard.metadata.v1.sqlite" / "meta.db"))
    backend = LocalStore(str(tmp_path / "io.dockyard.content.v1.content"))
    return NamespacedContent(db=db, backend=backend, events=RecordingEvents(), sharing_policy=policy)


def add_lease(store: NamespacedContent, namespace: str, lease: str, labels: str = "{}") -> None:
    with store.db.write() as tx:
        tx.ensure_namespace(namespace)
        tx.execute("INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)",
                   (namespace, lease, labels, now_ns()))


def lease_resources(store: NamespacedContent, namespace: str, lease: str) -> set[tuple[str, str]]:
    with store.db.read() as conn:
        return {(r["type"], r["id"]) for r in conn.execute(
            "SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ?", (namespace, lease))}


def ingest_row(store: NamespacedContent, namespace: str, ref: str):
    with store.db.read() as conn:
        return conn.execute("SELECT * FROM ingests WHERE namespace = ? AND ref = ?", (namespace, ref)).fetchone()


async def commit(store: NamespacedContent, namespace: str, ref: str, data: bytes, **kw) -> str:
    w = await store.writer(namespace, ref, total=len(data), expected=kw.pop("expected", None), lease=kw.pop("lease", None))
    async with w:
        await w.write(data)
        return await w.commit(len(data), sha256(data), **kw)


def blob_stat(store: NamespacedContent, digest: str) -> os.stat_result:
    return os.stat(store.backend.blob_path(digest))
