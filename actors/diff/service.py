"""``Diff.Apply`` / ``Diff.Diff`` over msgpack-RPC: a thin facade over the ``Differ``.

Mounts travel as ``{type, source, target, options}`` maps, descriptors as the
wire converter writes ``oci.descriptor.Descriptor``.
"""

from __future__ import annotations

import attrs

from actors.mount import Mount
from actors.plugin import DIFFER, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from oci.descriptor import Descriptor

from .differ import Differ


@attrs.frozen(kw_only=True)
class MountSpec:
    type: str
    source: str = ""
    target: str = ""
    options: list[str] = attrs.Factory(list)

    def to_mount(self) -> Mount:
        return Mount(type=self.type, source=self.source, target=self.target, options=tuple(self.options))


@attrs.frozen(kw_only=True)
class ApplyDiff:
    diff: Descriptor
    mounts: list[MountSpec] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class DiffMounts:
    left: list[MountSpec] = attrs.Factory(list)
    right: list[MountSpec] = attrs.Factory(list)
    media_type: str = ""
    ref: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    source_date_epoch: int | None = None


class DiffService(Service):
    name = "Diff"

    def __init__(self, differ: Differ) -> None:
        self.differ = differ

    @rpc(ApplyDiff)
    async def Apply(self, ctx: CallContext, req: ApplyDiff) -> dict:
        applied = await self.differ.apply(ctx.namespace, req.diff, [m.to_mount() for m in req.mounts])
        return {"applied": applied}

    @rpc(DiffMounts)
    async def Diff(self, ctx: CallContext, req: DiffMounts) -> dict:
        desc = await self.differ.compare(
            ctx.namespace, [m.to_mount() for m in req.left], [m.to_mount() for m in req.right],
            media_type=req.media_type, ref=req.ref or None, labels=dict(req.labels), lease=ctx.lease,
            source_date_epoch=req.source_date_epoch)
        return {"diff": desc}


@plugin(SERVICE, "diff-service", requires=(DIFFER,))
async def init_diff_service(ic: InitContext) -> DiffService:
    return DiffService(ic.plugins.get_single(DIFFER))
