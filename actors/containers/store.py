"""The containers store actor: owns every write to the ``containers`` table.

Records are JSON in ``containers.record``; ``labels`` is kept in its own column
too so label filters and GC can read it without parsing the record.  Events are
published after the write commits.  Deleting a record marks the DB dirty: the
container's snapshot and image stop being GC roots.
"""

from __future__ import annotations

import json

import attrs

from actors.core import Actor, handles
from actors.metadata.db import dump_labels, now_ns
from wire import errdefs, filters, identifiers
from wire.events import (
    TOPIC_CONTAINER_CREATE, TOPIC_CONTAINER_DELETE, TOPIC_CONTAINER_UPDATE,
    ContainerCreate, ContainerDelete, ContainerRuntime, ContainerUpdate,
)

from .records import Container, apply_update, dump_record, to_record, validate


@attrs.frozen(kw_only=True)
class CreateContainer:
    namespace: str
    container: Container


@attrs.frozen(kw_only=True)
class GetContainer:
    namespace: str
    id: str


@attrs.frozen(kw_only=True)
class ListContainers:
    namespace: str
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class UpdateContainer:
    namespace: str
    container: Container
    update_mask: list[str] | None = None


@attrs.frozen(kw_only=True)
class DeleteContainer:
    namespace: str
    id: str


class ContainerStore(Actor):
    def __init__(self, metadata) -> None:
        self.metadata = metadata
        self.db = metadata.db

    def _read(self, conn, namespace: str, cid: str) -> dict | None:
        row = conn.execute("SELECT record FROM containers WHERE namespace = ? AND id = ?",
                           (namespace, cid)).fetchone()
        return json.loads(row["record"]) if row else None

    @handles(GetContainer)
    async def get(self, msg: GetContainer) -> dict:
        identifiers.validate_identifier(msg.id, "container id")
        with self.db.read() as conn:
            record = self._read(conn, msg.namespace, msg.id)
        if record is None:
            raise errdefs.NotFound(f"container {msg.id!r}: not found")
        return record

    @handles(ListContainers)
    async def list(self, msg: ListContainers) -> list[dict]:
        flt = filters.parse_any(msg.filters)
        with self.db.read() as conn:
            rows = conn.execute("SELECT record FROM containers WHERE namespace = ? ORDER BY id",
                                (msg.namespace,)).fetchall()
        records = [json.loads(r["record"]) for r in rows]
        return [r for r in records if flt.match(filters.MappingAdaptor(_filter_view(r)))]

    @handles(CreateContainer)
    async def create(self, msg: CreateContainer) -> dict:
        now = now_ns()
        record = to_record(msg.container)
        record["created_at"] = record["updated_at"] = now
        validate(record)
        text = dump_record(record)
        with self.db.write() as tx:
            tx.ensure_namespace(msg.namespace)
            if self._read(tx.conn, msg.namespace, record["id"]) is not None:
                raise errdefs.AlreadyExists(f"container {record['id']!r}: already exists")
            tx.execute("INSERT INTO containers (namespace, id, record, labels, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (msg.namespace, record["id"], text, dump_labels(record["labels"]), now, now))
        self.metadata.events.publish(msg.namespace, TOPIC_CONTAINER_CREATE, ContainerCreate(
            id=record["id"], image=record["image"],
            runtime=ContainerRuntime(name=record["runtime"]["name"], options=record["runtime"]["options"])))
        return record

    @handles(UpdateContainer)
    async def update(self, msg: UpdateContainer) -> dict:
        cid = msg.container.id
        identifiers.validate_identifier(cid, "container id")
        with self.db.write() as tx:
            tx.ensure_namespace(msg.namespace)
            current = self._read(tx.conn, msg.namespace, cid)
            if current is None:
                raise errdefs.NotFound(f"container {cid!r}: not found")
            record = apply_update(current, to_record(msg.container), msg.update_mask)
            record["updated_at"] = now_ns()
            validate(record)
            tx.execute("UPDATE containers SET record = ?, labels = ?, updated_at = ? WHERE namespace = ? AND id = ?",
                       (dump_record(record), dump_labels(record["labels"]), record["updated_at"],
                        msg.namespace, cid))
            if record["snapshot_key"] != current["snapshot_key"] or record["image"] != current["image"]:
                tx.mark_deleted()  # an old snapshot/image may have lost its last root
        self.metadata.events.publish(msg.namespace, TOPIC_CONTAINER_UPDATE, ContainerUpdate(
            id=cid, image=record["image"], labels=record["labels"], snapshot_key=record["snapshot_key"]))
        return record

    @handles(DeleteContainer)
    async def delete(self, msg: DeleteContainer) -> None:
        identifiers.validate_identifier(msg.id, "container id")
        with self.db.write() as tx:
            cur = tx.execute("DELETE FROM containers WHERE namespace = ? AND id = ?", (msg.namespace, msg.id))
            if cur.rowcount == 0:
                raise errdefs.NotFound(f"container {msg.id!r}: not found")
            tx.mark_deleted()
        self.metadata.events.publish(msg.namespace, TOPIC_CONTAINER_DELETE, ContainerDelete(id=msg.id))


def _filter_view(record: dict) -> dict:
    """What container filters see: ``id``, ``image``, ``runtime.name``, ``labels.<k>`` and the rest."""
    return {"id": record["id"], "image": record["image"], "runtime": {"name": record["runtime"]["name"]},
            "labels": record["labels"], "snapshotter": record["snapshotter"],
            "snapshot_key": record["snapshot_key"], "sandbox_id": record["sandbox_id"]}
