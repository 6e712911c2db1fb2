"""Rows inserted straight into a real meta.db, and a recording event publisher."""

from __future__ import annotations

import hashlib
import json

import attrs

from actors.metadata.db import MetadataDB, dump_labels, now_ns


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fake_digest(name: str) -> str:
    return digest_of(name.encode())


@attrs.define(eq=False)
class RecordingEvents:
    published: list[tuple[str, str, object]] = attrs.Factory(list)

    def publish(self, namespace: str, topic: str, event) -> None:
        self.published.append((namespace, topic, event))

    def topics(self) -> list[tuple[str, str, dict]]:
        out = []
        for ns, topic, event in self.published:
            payload = event if isinstance(event, dict) else attrs.asdict(event)
            out.append((ns, topic, payload))
        return out


@attrs.define(eq=False)
class FakeMetadata:
    """The attributes the collector reads from the metadata plugin's instance."""

    db: MetadataDB
    events: RecordingEvents = attrs.Factory(RecordingEvents)
    content: object = None
    snapshotters: dict = attrs.Factory(dict)


def open_db(path) -> MetadataDB:
    return MetadataDB(str(path / "meta.db"))


def _write(db: MetadataDB, ns: str, sql: str, params: tuple) -> None:
    with db.write() as tx:
        tx.ensure_namespace(ns)
        tx.execute(sql, params)


def add_content(db, ns, digest, labels=None, size=1, created_at=None) -> None:
    now = created_at or now_ns()
    _write(db, ns, "INSERT INTO content (namespace, digest, size, labels, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (ns, digest, size, dump_labels(labels), now, now))


def add_image(db, ns, name, target_digest, labels=None) -> None:
    now = now_ns()
    target = json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": target_digest,
                         "size": 1})
    _write(db, ns, "INSERT INTO images (namespace, name, target, labels, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (ns, name, target, dump_labels(labels), now, now))


def add_snapshot(db, ns, snapshotter, key, parent="", labels=None, backend_key=None) -> None:
    now = now_ns()
    _write(db, ns, "INSERT INTO snapshots (namespace, snapshotter, key, backend_key, parent, labels, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
           (ns, snapshotter, key, backend_key or f"{ns}/1/{key}", parent, dump_labels(labels), now, now))


def add_lease(db, ns, lease, labels=None) -> None:
    _write(db, ns, "INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)",
           (ns, lease, dump_labels(labels), now_ns()))


def add_resource(db, ns, lease, rtype, rid) -> None:
    _write(db, ns, "INSERT INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)",
           (ns, lease, rtype, rid))


def add_ingest(db, ns, ref, backend_ref=None, expected="", expire_at=0) -> None:
    _write(db, ns, "INSERT INTO ingests (namespace, ref, backend_ref, expected, expire_at) VALUES (?, ?, ?, ?, ?)",
           (ns, ref, backend_ref or f"{ns}/1/{ref}", expected, expire_at))


def add_container(db, ns, cid, snapshotter="", snapshot_key="", labels=None, image="") -> None:
    now = now_ns()
    record = {"id": cid, "labels": labels or {}, "image": image, "snapshotter": snapshotter,
              "snapshot_key": snapshot_key, "runtime": {"name": "io.dockyard.runc.v1", "options": None},
              "spec": {"ociVersion": "1.0.2"}, "extensions": {}, "sandbox_id": ""}
    _write(db, ns, "INSERT INTO containers (namespace, id, record, labels, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (ns, cid, json.dumps(record), dump_labels(labels), now, now))


def add_sandbox(db, ns, sid, labels=None) -> None:
    now = now_ns()
    _write(db, ns, "INSERT INTO sandboxes (namespace, id, record, labels, created_at, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (ns, sid, "{}", dump_labels(labels), now, now))


def rows(db, table: str, *columns: str) -> set[tuple]:
    with db.read() as conn:
        return {tuple(r) for r in conn.execute(f"SELECT {', '.join(columns)} FROM {table}")}


def content_digests(db, ns="default") -> set[str]:
    return {d for n, d in rows(db, "content", "namespace", "digest") if n == ns}
