"""``Containers.*`` over msgpack-RPC (containerd's Get, List, ListStream, Create, Update, Delete)."""

from __future__ import annotations

import attrs

from actors.core import ChildSpec
from actors.plugin import METADATA, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from actors.timeouts import ACTOR_ASK

from .records import Container
from .store import (
    ContainerStore, CreateContainer, DeleteContainer, GetContainer, ListContainers, UpdateContainer,
)


@attrs.frozen(kw_only=True)
class GetRequest:
    id: str


@attrs.frozen(kw_only=True)
class ListRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class CreateRequest:
    container: Container


@attrs.frozen(kw_only=True)
class UpdateRequest:
    container: Container
    update_mask: list[str] | None = None


@attrs.frozen(kw_only=True)
class DeleteRequest:
    id: str


class ContainersService(Service):
    name = "Containers"

    def __init__(self, store, ask_timeout: float) -> None:
        self.store = store
        self.timeout = ask_timeout

    async def _ask(self, ctx: CallContext, msg):
        return await self.store.ask(msg, timeout=min(self.timeout, ctx.remaining()) or self.timeout)

    # In-daemon API (CRI and the task manager call these directly).
    async def get(self, namespace: str, cid: str) -> dict:
        return await self.store.ask(GetContainer(namespace=namespace, id=cid), timeout=self.timeout)

    @rpc(GetRequest)
    async def Get(self, ctx, req: GetRequest) -> dict:
        return await self._ask(ctx, GetContainer(namespace=ctx.namespace, id=req.id))

    @rpc(ListRequest)
    async def List(self, ctx, req: ListRequest) -> list[dict]:
        return await self._ask(ctx, ListContainers(namespace=ctx.namespace, filters=req.filters))

    @rpc(ListRequest, stream="server")
    async def ListStream(self, ctx, req: ListRequest) -> dict:
        records = await self._ask(ctx, ListContainers(namespace=ctx.namespace, filters=req.filters))
        for record in records:
            await ctx.send(record)
        return {}

    @rpc(CreateRequest)
    async def Create(self, ctx, req: CreateRequest) -> dict:
        return await self._ask(ctx, CreateContainer(namespace=ctx.namespace, container=req.container))

    @rpc(UpdateRequest)
    async def Update(self, ctx, req: UpdateRequest) -> dict:
        return await self._ask(ctx, UpdateContainer(namespace=ctx.namespace, container=req.container,
                                                    update_mask=req.update_mask))

    @rpc(DeleteRequest)
    async def Delete(self, ctx, req: DeleteRequest) -> dict:
        await self._ask(ctx, DeleteContainer(namespace=ctx.namespace, id=req.id))
        return {}


@plugin(SERVICE, "containers-service", requires=(METADATA,))
async def init_containers(ic: InitContext) -> ContainersService:
    metadata = ic.plugins.get_single(METADATA)
    ref = await ic.spawn(ChildSpec(name="containers", start=lambda: ContainerStore(metadata)))
    return ContainersService(ref, ic.timeouts(ACTOR_ASK))
