"""``Snapshots.*`` over msgpack-RPC: a thin facade over ``metadata.snapshot_stores``.

Every request names its ``snapshotter`` (default ``overlayfs``).  Mounts go back
to the caller as ``{type, source, target, options}`` maps: the daemon does not
mount them.  Infos are ``{name, kind, parent, labels, created_at, updated_at}``
with ``kind`` one of ``active``, ``view``, ``committed``.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.mount import Mount
from actors.plugin import METADATA, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from wire.errdefs import InvalidArgument

from .metadata import NamespacedSnapshotter
from .records import SnapshotInfo
from .types import Kind

DEFAULT_SNAPSHOTTER = "overlayfs"


@attrs.frozen(kw_only=True)
class PrepareSnapshot:
    key: str
    parent: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class ViewSnapshot:
    key: str
    parent: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class CommitSnapshot:
    name: str
    key: str
    labels: dict[str, str] = attrs.Factory(dict)
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class SnapshotKey:
    """Mounts, Remove, Stat and Usage name one snapshot."""

    key: str
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class InfoSpec:
    """A snapshot info as a client sends it to Update (only name and labels are used)."""

    name: str
    kind: str = ""
    parent: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    created_at: int = 0
    updated_at: int = 0


@attrs.frozen(kw_only=True)
class UpdateSnapshot:
    info: InfoSpec
    update_mask: list[str] | None = None
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class ListSnapshots:
    filters: list[str] = attrs.Factory(list)
    snapshotter: str = DEFAULT_SNAPSHOTTER


@attrs.frozen(kw_only=True)
class CleanupSnapshots:
    snapshotter: str = DEFAULT_SNAPSHOTTER


def info_to_wire(info: SnapshotInfo) -> dict[str, Any]:
    return {"name": info.name, "kind": info.kind.label, "parent": info.parent, "labels": dict(info.labels),
            "created_at": info.created_at, "updated_at": info.updated_at}


def mounts_to_wire(mounts: list[Mount]) -> dict[str, Any]:
    return {"mounts": [{"type": m.type, "source": m.source, "target": m.target, "options": list(m.options)}
                       for m in mounts]}


class SnapshotsService(Service):
    name = "Snapshots"

    def __init__(self, stores: dict[str, NamespacedSnapshotter]) -> None:
        self.stores = stores

    def store(self, name: str) -> NamespacedSnapshotter:
        store = self.stores.get(name or DEFAULT_SNAPSHOTTER)
        if store is None:
            raise InvalidArgument(f"snapshotter {name!r}: not loaded (have {', '.join(sorted(self.stores)) or 'none'})")
        return store

    @rpc(PrepareSnapshot)
    async def Prepare(self, ctx: CallContext, req: PrepareSnapshot) -> dict:
        store = self.store(req.snapshotter)
        return mounts_to_wire(await store.prepare(ctx.namespace, req.key, req.parent, req.labels, lease=ctx.lease))

    @rpc(ViewSnapshot)
    async def View(self, ctx: CallContext, req: ViewSnapshot) -> dict:
        store = self.store(req.snapshotter)
        return mounts_to_wire(await store.view(ctx.namespace, req.key, req.parent, req.labels, lease=ctx.lease))

    @rpc(SnapshotKey)
    async def Mounts(self, ctx: CallContext, req: SnapshotKey) -> dict:
        return mounts_to_wire(await self.store(req.snapshotter).mounts(ctx.namespace, req.key))

    @rpc(CommitSnapshot)
    async def Commit(self, ctx: CallContext, req: CommitSnapshot) -> dict:
        await self.store(req.snapshotter).commit(ctx.namespace, req.name, req.key, req.labels, lease=ctx.lease)
        return {}

    @rpc(SnapshotKey)
    async def Remove(self, ctx: CallContext, req: SnapshotKey) -> dict:
        await self.store(req.snapshotter).remove(ctx.namespace, req.key)
        return {}

    @rpc(SnapshotKey)
    async def Stat(self, ctx: CallContext, req: SnapshotKey) -> dict:
        return {"info": info_to_wire(await self.store(req.snapshotter).stat(ctx.namespace, req.key))}

    @rpc(UpdateSnapshot)
    async def Update(self, ctx: CallContext, req: UpdateSnapshot) -> dict:
        store = self.store(req.snapshotter)
        kind = Kind.parse(req.info.kind) if req.info.kind else Kind.UNKNOWN
        info = SnapshotInfo(name=req.info.name, kind=kind, parent=req.info.parent, labels=dict(req.info.labels))
        return {"info": info_to_wire(await store.update(ctx.namespace, info, req.update_mask))}

    @rpc(SnapshotKey)
    async def Usage(self, ctx: CallContext, req: SnapshotKey) -> dict:
        usage = await self.store(req.snapshotter).usage(ctx.namespace, req.key)
        return {"size": usage.size, "inodes": usage.inodes}

    @rpc(ListSnapshots, stream="server")
    async def List(self, ctx: CallContext, req: ListSnapshots) -> dict:
        infos = await self.store(req.snapshotter).list(ctx.namespace, req.filters)
        for info in infos:
            await ctx.send(info_to_wire(info))
        return {"count": len(infos)}

    @rpc(CleanupSnapshots)
    async def Cleanup(self, ctx: CallContext, req: CleanupSnapshots) -> dict:
        await self.store(req.snapshotter).cleanup()
        return {}


@plugin(SERVICE, "snapshots-service", requires=(METADATA,))
async def init_snapshots_service(ic: InitContext) -> SnapshotsService:
    metadata = ic.plugins.get_single(METADATA)
    return SnapshotsService(metadata.snapshot_stores)
