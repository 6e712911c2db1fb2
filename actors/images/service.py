"""``Images.*`` over msgpack-RPC: a thin facade over ``NamespacedImages``.

Methods as containerd's images service: Get, List, Create, Update (with an
update mask), Delete (optional target check, ``sync`` waits for a GC run).
"""

from __future__ import annotations

import attrs

from actors.rpc.service import CallContext, Service, rpc
from oci.descriptor import Descriptor

from .records import Image
from .store import NamespacedImages


@attrs.frozen(kw_only=True)
class ImageSpec:
    """An image as a client sends it (times are set by the store)."""

    name: str
    target: Descriptor
    labels: dict[str, str] = attrs.Factory(dict)
    created_at: int = 0
    updated_at: int = 0

    def to_image(self) -> Image:
        return Image(name=self.name, target=self.target, labels=dict(self.labels))


@attrs.frozen(kw_only=True)
class GetImage:
    name: str


@attrs.frozen(kw_only=True)
class ListImages:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class CreateImage:
    image: ImageSpec


@attrs.frozen(kw_only=True)
class UpdateImage:
    image: ImageSpec
    update_mask: list[str] | None = None


@attrs.frozen(kw_only=True)
class DeleteImage:
    name: str
    sync: bool = False
    target: Descriptor | None = None


class ImagesService(Service):
    name = "Images"

    def __init__(self, store: NamespacedImages) -> None:
        self.store = store

    @rpc(GetImage)
    async def Get(self, ctx: CallContext, req: GetImage) -> dict:
        return {"image": await self.store.get(ctx.namespace, req.name)}

    @rpc(ListImages)
    async def List(self, ctx: CallContext, req: ListImages) -> dict:
        return {"images": await self.store.list(ctx.namespace, req.filters)}

    @rpc(CreateImage)
    async def Create(self, ctx: CallContext, req: CreateImage) -> dict:
        return {"image": await self.store.create(ctx.namespace, req.image.to_image(), lease=ctx.lease)}

    @rpc(UpdateImage)
    async def Update(self, ctx: CallContext, req: UpdateImage) -> dict:
        image = await self.store.update(ctx.namespace, req.image.to_image(), req.update_mask, lease=ctx.lease)
        return {"image": image}

    @rpc(DeleteImage)
    async def Delete(self, ctx: CallContext, req: DeleteImage) -> dict:
        await self.store.delete(ctx.namespace, req.name, target=req.target, sync=req.sync)
        return {}
