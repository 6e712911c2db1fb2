"""Namespaces: partitions of dockyard's metadata (not Linux namespaces).

The store actor owns every namespace record change; the service is its RPC facade.
Rules as containerd's: names are identifiers; create of an existing one is
AlreadyExists; get of an unknown one answers empty labels; update masks may only
name ``labels.<key>`` (no mask replaces all labels, "" deletes a label); delete
is refused while the namespace holds images, content, containers or snapshots.
"""

from __future__ import annotations

import attrs

from actors.core import Actor, ChildSpec, handles
from actors.plugin import METADATA, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from actors.timeouts import ACTOR_ASK
from wire import errdefs, filters, identifiers
from wire.events import (
    TOPIC_NAMESPACE_CREATE, TOPIC_NAMESPACE_DELETE, TOPIC_NAMESPACE_UPDATE,
    NamespaceCreate, NamespaceDelete, NamespaceUpdate,
)

from .db import dump_labels, load_labels, now_ns
from .plugin import Metadata


@attrs.frozen(kw_only=True)
class CreateNamespace:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class GetNamespace:
    name: str


@attrs.frozen(kw_only=True)
class ListNamespaces:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class UpdateNamespace:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)
    update_mask: list[str] | None = None


@attrs.frozen(kw_only=True)
class DeleteNamespace:
    name: str


def _record(name: str, labels: dict[str, str]) -> dict:
    return {"name": name, "labels": labels}


class NamespaceStore(Actor):
    def __init__(self, metadata: Metadata) -> None:
        self.metadata = metadata
        self.db = metadata.db

    @handles(CreateNamespace)
    async def create(self, msg: CreateNamespace) -> dict:
        identifiers.validate_namespace(msg.name)
        identifiers.validate_labels(msg.labels)
        now = now_ns()
        with self.db.write() as tx:
            row = tx.execute("SELECT 1 FROM namespaces WHERE name = ?", (msg.name,)).fetchone()
            if row is not None:
                raise errdefs.AlreadyExists(f"namespace {msg.name}: already exists")
            tx.execute("INSERT INTO namespaces (name, labels, created_at, updated_at) VALUES (?, ?, ?, ?)",
                       (msg.name, dump_labels(msg.labels), now, now))
        self.metadata.events.publish(msg.name, TOPIC_NAMESPACE_CREATE,
                                     NamespaceCreate(name=msg.name, labels=dict(msg.labels)))
        return _record(msg.name, dict(msg.labels))

    @handles(GetNamespace)
    async def get(self, msg: GetNamespace) -> dict:
        identifiers.validate_namespace(msg.name)
        with self.db.read() as conn:
            row = conn.execute("SELECT labels FROM namespaces WHERE name = ?", (msg.name,)).fetchone()
        return _record(msg.name, load_labels(row["labels"]) if row else {})

    @handles(ListNamespaces)
    async def list(self, msg: ListNamespaces) -> list[dict]:
        flt = filters.parse_any(msg.filters)
        with self.db.read() as conn:
            rows = conn.execute("SELECT name, labels FROM namespaces ORDER BY name").fetchall()
        records = [_record(r["name"], load_labels(r["labels"])) for r in rows]
        return [r for r in records if flt.match(filters.MappingAdaptor(r))]

    @handles(UpdateNamespace)
    async def update(self, msg: UpdateNamespace) -> dict:
        identifiers.validate_namespace(msg.name)
        with self.db.write() as tx:
            tx.ensure_namespace(msg.name)
            row = tx.execute("SELECT labels FROM namespaces WHERE name = ?", (msg.name,)).fetchone()
            labels = load_labels(row["labels"])
            if msg.update_mask:
                for path in msg.update_mask:
                    if not path.startswith("labels.") or len(path) == len("labels."):
                        raise errdefs.InvalidArgument(
                            f"namespace {msg.name}: cannot update {path!r}; only labels.<key> may be updated")
                    key = path[len("labels."):]
                    value = msg.labels.get(key, "")
                    if value:
                        labels[key] = value
                    else:
                        labels.pop(key, None)
            else:
                labels = {k: v for k, v in msg.labels.items() if v}
            identifiers.validate_labels(labels)
            tx.execute("UPDATE namespaces SET labels = ?, updated_at = ? WHERE name = ?",
                       (dump_labels(labels), now_ns(), msg.name))
        self.metadata.events.publish(msg.name, TOPIC_NAMESPACE_UPDATE,
                                     NamespaceUpdate(name=msg.name, labels=labels))
        return _record(msg.name, labels)

    @handles(DeleteNamespace)
    async def delete(self, msg: DeleteNamespace) -> None:
        identifiers.validate_namespace(msg.name)
        with self.db.write() as tx:
            row = tx.execute("SELECT 1 FROM namespaces WHERE name = ?", (msg.name,)).fetchone()
            if row is None:
                raise errdefs.NotFound(f"namespace {msg.name}: not found")
            in_use = tx.namespace_in_use(msg.name)
            if in_use is not None:
                raise errdefs.FailedPrecondition(
                    f"namespace {msg.name} must be empty, but it still has {in_use}")
            tx.execute("DELETE FROM namespaces WHERE name = ?", (msg.name,))
            for table in ("leases", "lease_resources", "ingests", "sandboxes"):
                tx.execute(f"DELETE FROM {table} WHERE namespace = ?", (msg.name,))
            tx.mark_deleted()
        self.metadata.events.publish(msg.name, TOPIC_NAMESPACE_DELETE, NamespaceDelete(name=msg.name))


class NamespacesService(Service):
    name = "Namespaces"

    def __init__(self, store, ask_timeout: float) -> None:
        self.store = store
        self.timeout = ask_timeout

    async def _ask(self, ctx: CallContext, msg):
        return await self.store.ask(msg, timeout=min(self.timeout, ctx.remaining()) or self.timeout)

    @rpc(CreateNamespace)
    async def Create(self, ctx, req: CreateNamespace) -> dict:
        return await self._ask(ctx, req)

    @rpc(GetNamespace)
    async def Get(self, ctx, req: GetNamespace) -> dict:
        return await self._ask(ctx, req)

    @rpc(ListNamespaces)
    async def List(self, ctx, req: ListNamespaces) -> list[dict]:
        return await self._ask(ctx, req)

    @rpc(UpdateNamespace)
    async def Update(self, ctx, req: UpdateNamespace) -> dict:
        return await self._ask(ctx, req)

    @rpc(DeleteNamespace)
    async def Delete(self, ctx, req: DeleteNamespace) -> dict:
        await self._ask(ctx, req)
        return {}


@plugin(SERVICE, "namespaces-service", requires=(METADATA,))
async def init_namespaces(ic: InitContext) -> NamespacesService:
    metadata = ic.plugins.get_single(METADATA)
    ref = await ic.spawn(ChildSpec(name="namespaces", start=lambda: NamespaceStore(metadata)))
    return NamespacesService(ref, ic.timeouts(ACTOR_ASK))
