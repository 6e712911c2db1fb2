"""``io.dockyard.lease.v1.manager``: the lease manager plugin and its ``Leases.*`` RPC facade.

In-process callers (importers, pullers, CRI) use the async methods; RPC
clients the ``Leases.*`` methods.  ``delete(sync=True)`` waits for the next
garbage collection (when a GC plugin is loaded) outside the store's turn.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import trio

from actors.core import ActorRef, ChildSpec
from actors.plugin import GC, LEASE, METADATA, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from actors.timeouts import ACTOR_ASK, register
from wire import errdefs

from .records import Lease, Resource
from .store import (
    AddResource, CreateLease, DeleteLease, DeleteResource, LeaseStore, ListLeases, ListResources,
)

log = logging.getLogger("dockyard.leases")

SYNC_DELETE = register("io.dockyard.timeout.lease.sync_delete", 60.0)


@attrs.frozen(kw_only=True)
class CreateRequest:
    id: str = ""
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class DeleteRequest:
    id: str
    sync: bool = False


@attrs.frozen(kw_only=True)
class ListRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class ResourceRequest:
    id: str
    resource: Resource


@attrs.frozen(kw_only=True)
class ListResourcesRequest:
    id: str


class LeasesService(Service):
    name = "Leases"

    def __init__(self, store: ActorRef, *, gc: Any, ask_timeout: float, sync_timeout: float) -> None:
        self.store = store
        self.gc = gc  # the GarbageCollector, or None when no GC plugin is loaded
        self.ask_timeout = ask_timeout
        self.sync_timeout = sync_timeout

    # -- in-process API ------------------------------------------------------------

    async def create(self, namespace: str, id: str = "", labels: dict[str, str] | None = None) -> Lease:
        return await self._ask(CreateLease(namespace=namespace, id=id, labels=dict(labels or {})))

    async def delete(self, namespace: str, id: str, *, sync: bool = False, timeout: float | None = None) -> bool:
        """Delete the lease; with ``sync`` wait for the collection that follows.
        Returns False if sync was asked but there is no collector to wait for."""
        await self._ask(DeleteLease(namespace=namespace, id=id))
        if not sync:
            return True
        if self.gc is None:
            log.warning("lease %s deleted; no GC plugin is loaded, so there is no collection to wait for", id)
            return False
        limit = self.sync_timeout if timeout is None else min(timeout, self.sync_timeout)
        with trio.move_on_after(limit) as scope:
            await self.gc.schedule_and_wait()
        if scope.cancelled_caught:
            raise errdefs.DeadlineExceeded(f"lease {id!r}: deleted, but garbage collection did not finish "
                                           f"within {limit:g}s")
        return True

    async def list(self, namespace: str, filters: list[str] | tuple[str, ...] = ()) -> list[Lease]:
        return await self._ask(ListLeases(namespace=namespace, filters=list(filters)))

    async def add_resource(self, namespace: str, id: str, resource: Resource) -> None:
        await self._ask(AddResource(namespace=namespace, id=id, resource=resource))

    async def delete_resource(self, namespace: str, id: str, resource: Resource) -> None:
        await self._ask(DeleteResource(namespace=namespace, id=id, resource=resource))

    async def list_resources(self, namespace: str, id: str) -> list[Resource]:
        return await self._ask(ListResources(namespace=namespace, id=id))

    async def _ask(self, msg):
        return await self.store.ask(msg, timeout=self.ask_timeout)

    # -- RPC -------------------------------------------------------------------------

    @rpc(CreateRequest)
    async def Create(self, ctx: CallContext, req: CreateRequest) -> dict:
        return {"lease": await self.create(ctx.namespace, req.id, req.labels)}

    @rpc(DeleteRequest)
    async def Delete(self, ctx: CallContext, req: DeleteRequest) -> dict:
        collected = await self.delete(ctx.namespace, req.id, sync=req.sync, timeout=ctx.remaining() or None)
        return {"collected": collected} if req.sync else {}

    @rpc(ListRequest)
    async def List(self, ctx: CallContext, req: ListRequest) -> dict:
        return {"leases": await self.list(ctx.namespace, req.filters)}

    @rpc(ResourceRequest)
    async def AddResource(self, ctx: CallContext, req: ResourceRequest) -> dict:
        await self.add_resource(ctx.namespace, req.id, req.resource)
        return {}

    @rpc(ResourceRequest)
    async def DeleteResource(self, ctx: CallContext, req: ResourceRequest) -> dict:
        await self.delete_resource(ctx.namespace, req.id, req.resource)
        return {}

    @rpc(ListResourcesRequest)
    async def ListResources(self, ctx: CallContext, req: ListResourcesRequest) -> dict:
        return {"resources": await self.list_resources(ctx.namespace, req.id)}


@plugin(LEASE, "manager", requires=(METADATA, GC))
async def init_leases(ic: InitContext) -> LeasesService:
    metadata = ic.plugins.get_single(METADATA)
    gc = next(iter(ic.plugins.get_by_type(GC).values()), None)
    if gc is None:
        log.warning("no GC plugin: Leases.Delete(sync=true) will not wait for a collection")
    ref = await ic.spawn(ChildSpec(name="leases", start=lambda: LeaseStore(metadata.db)))
    return LeasesService(ref, gc=gc, ask_timeout=ic.timeouts(ACTOR_ASK), sync_timeout=ic.timeouts(SYNC_DELETE))
