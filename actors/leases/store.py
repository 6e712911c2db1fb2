"""The lease store actor: every change to lease records goes through its mailbox."""

from __future__ import annotations

import attrs

from actors.core import Actor, handles
from actors.metadata.db import MetadataDB, dump_labels, load_labels, now_ns
from wire import errdefs, filters, identifiers

from .records import Lease, Resource, generate_id, parse_resource


@attrs.frozen(kw_only=True)
class CreateLease:
    namespace: str
    id: str = ""
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class DeleteLease:
    namespace: str
    id: str


@attrs.frozen(kw_only=True)
class ListLeases:
    namespace: str
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class AddResource:
    namespace: str
    id: str
    resource: Resource


@attrs.frozen(kw_only=True)
class DeleteResource:
    namespace: str
    id: str
    resource: Resource


@attrs.frozen(kw_only=True)
class ListResources:
    namespace: str
    id: str


def _require(tx_or_conn, namespace: str, lease_id: str) -> None:
    row = tx_or_conn.execute("SELECT 1 FROM leases WHERE namespace = ? AND id = ?", (namespace, lease_id)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"lease {lease_id!r}: not found")


class LeaseStore(Actor):
    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    @handles(CreateLease)
    async def create(self, msg: CreateLease) -> Lease:
        lease_id = msg.id or generate_id()
        identifiers.validate_free_form(lease_id, "lease id")
        identifiers.validate_labels(msg.labels)
        now = now_ns()
        with self.db.write() as tx:
            tx.ensure_namespace(msg.namespace)
            cur = tx.execute("INSERT OR IGNORE INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)",
                             (msg.namespace, lease_id, dump_labels(msg.labels), now))
            if cur.rowcount == 0:
                raise errdefs.AlreadyExists(f"lease {lease_id!r}: already exists")
        return Lease(id=lease_id, created_at=now, labels=dict(msg.labels))

    @handles(DeleteLease)
    async def delete(self, msg: DeleteLease) -> None:
        with self.db.write() as tx:
            cur = tx.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (msg.namespace, msg.id))
            if cur.rowcount == 0:
                raise errdefs.NotFound(f"lease {msg.id!r}: not found")
            tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ?", (msg.namespace, msg.id))
            tx.mark_deleted()

    @handles(ListLeases)
    async def list(self, msg: ListLeases) -> list[Lease]:
        flt = filters.parse_any(msg.filters)
        with self.db.read() as conn:
            rows = conn.execute("SELECT id, labels, created_at FROM leases WHERE namespace = ? ORDER BY created_at, id",
                                (msg.namespace,)).fetchall()
        leases = [Lease(id=r["id"], created_at=r["created_at"], labels=load_labels(r["labels"])) for r in rows]
        return [lease for lease in leases
                if flt.match(filters.MappingAdaptor({"id": lease.id, "labels": lease.labels}))]

    @handles(AddResource)
    async def add_resource(self, msg: AddResource) -> None:
        resource = parse_resource(msg.resource)
        with self.db.write() as tx:
            _require(tx, msg.namespace, msg.id)
            tx.execute("INSERT OR IGNORE INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)",
                       (msg.namespace, msg.id, resource.type, resource.id))

    @handles(DeleteResource)
    async def delete_resource(self, msg: DeleteResource) -> None:
        resource = parse_resource(msg.resource)
        with self.db.write() as tx:
            _require(tx, msg.namespace, msg.id)
            cur = tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
                             (msg.namespace, msg.id, resource.type, resource.id))
            if cur.rowcount:
                tx.mark_deleted()

    @handles(ListResources)
    async def list_resources(self, msg: ListResources) -> list[Resource]:
        with self.db.read() as conn:
            _require(conn, msg.namespace, msg.id)
            rows = conn.execute("SELECT type, id FROM lease_resources WHERE namespace = ? AND lease = ? "
                                "ORDER BY type, id", (msg.namespace, msg.id)).fetchall()
        return [Resource(id=r["id"], type=r["type"]) for r in rows]
