"""``Transfer.Pull`` / ``Transfer.Push`` / ``Content.Fetch``: registries over msgpack-RPC.

Plugin ``io.dockyard.transfer.v1.registry``.  Its methods join the ``Transfer``
and ``Content`` services of other plugins by name (the RPC server merges
methods by full name), so clients see one Transfer service.

All three are server-streaming: the items are ``TransferProgress`` steps
(coalesced per name), the response the result.  The same steps are published
as ``/transfer/progress`` events in the caller's namespace.  Each runs under
the caller's lease, or a temporary one deleted at the end.  Credentials come
in the request (``username``/``secret``) and are never logged or echoed.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.plugin import DIFFER, GC, LEASE, METADATA, TRANSFER, InitContext, plugin
from actors.rpc.service import CallContext, Method, Service, rpc
from actors.timeouts import register
from wire import errdefs

from .access import RegistryAccess
from .inflight import InFlight
from .lease import LEASE_CLEANUP, transfer_lease
from .progress import open_progress
from .pull import Puller, PullOptions
from .push import ImagePusher, PushOptions
from .registry import Timeouts

CONNECT = register("io.dockyard.timeout.transfer.registry-connect", 10.0)
READ = register("io.dockyard.timeout.transfer.registry-read", 30.0)
REQUEST = register("io.dockyard.timeout.transfer.registry-request", 60.0)
TOKEN = register("io.dockyard.timeout.transfer.registry-token", 30.0)


@attrs.frozen(kw_only=True)
class RegistryTransferConfig:
    max_concurrent_downloads: int = 3
    max_concurrent_uploaded_layers: int = 3
    config_path: str = ""  # default hosts.toml directory (containerd's ``config_path``)
    differ: str = "walking"
    snapshotter: str = "overlayfs"  # default unpack target
    push_chunk_size: int = 0  # default push upload: 0 = monolithic


@attrs.frozen(kw_only=True)
class PullImage:
    ref: str
    platforms: list[str] = attrs.Factory(list)
    all_platforms: bool = False
    unpack: bool = True
    snapshotter: str = ""
    plain_http: bool = False
    hosts_dir: str = ""
    username: str = attrs.field(default="", repr=False)
    secret: str = attrs.field(default="", repr=False)
    max_concurrent_downloads: int = 0  # 0: the plugin's


@attrs.frozen(kw_only=True)
class PushImage:
    ref: str
    local: str = ""  # the image to push; default: ref
    platforms: list[str] = attrs.Factory(list)
    plain_http: bool = False
    hosts_dir: str = ""
    username: str = attrs.field(default="", repr=False)
    secret: str = attrs.field(default="", repr=False)
    chunk_size: int = -1  # -1: the plugin's; 0: monolithic
    max_concurrent_uploads: int = 0


@attrs.frozen(kw_only=True)
class FetchContent:
    ref: str
    platforms: list[str] = attrs.Factory(list)
    all_platforms: bool = False  # with no platforms given, every platform is fetched anyway
    plain_http: bool = False
    hosts_dir: str = ""
    username: str = attrs.field(default="", repr=False)
    secret: str = attrs.field(default="", repr=False)


def _result(result: Any) -> dict:
    return {"name": result.name, "target": result.target, "unpacked": result.unpacked,
            "blobs": result.blobs, "downloaded": result.downloaded}


class _ContentFetch(Service):
    name = "Content"

    def __init__(self, owner: RegistryTransferService) -> None:
        self.owner = owner

    @rpc(FetchContent, stream="server")
    async def Fetch(self, ctx: CallContext, req: FetchContent) -> dict:
        """Fetch an image's content and record the image, without unpacking (``ctr content fetch``)."""
        options = PullOptions(platforms=tuple(req.platforms), all_platforms=req.all_platforms or not req.platforms,
                              unpack=False, max_concurrent_downloads=self.owner.config.max_concurrent_downloads)
        access = self.owner.access(req.plain_http, req.hosts_dir, req.username, req.secret)
        return await self.owner.run_pull(ctx, req.ref, options, access)


class RegistryTransferService(Service):
    name = "Transfer"

    def __init__(self, metadata: Any, differ: Any, leases: Any, config: RegistryTransferConfig,
                 timeouts: Timeouts, *, lease_cleanup: float = 10.0) -> None:
        self.metadata = metadata
        self.leases = leases
        self.lease_cleanup = lease_cleanup
        self.config = config
        self.puller = Puller(metadata=metadata, differ=differ, inflight=InFlight(), timeouts=timeouts)
        self.pusher = ImagePusher(metadata=metadata, timeouts=timeouts)
        self._fetch = _ContentFetch(self)

    def rpc_methods(self) -> dict[str, Method]:
        return {**super().rpc_methods(), **self._fetch.rpc_methods()}

    def statistics(self) -> dict[str, int]:
        return self.puller.inflight.statistics()

    def access(self, plain_http: bool, hosts_dir: str, username: str, secret: str) -> RegistryAccess:
        return RegistryAccess(plain_http=plain_http, hosts_dir=hosts_dir or self.config.config_path,
                              username=username, secret=secret)

    async def run_pull(self, ctx: CallContext, ref: str, options: PullOptions, access: RegistryAccess) -> dict:
        ns = ctx.namespace
        async with transfer_lease(self.leases, ns, ctx.lease, cleanup_timeout=self.lease_cleanup) as lease:
            async with open_progress(ns, self.metadata.events.publish, ctx.send, parents=[ref]) as progress:
                result = await self.puller.pull(ns, ref, options, access, lease=lease, progress=progress)
        return _result(result)

    @rpc(PullImage, stream="server")
    async def Pull(self, ctx: CallContext, req: PullImage) -> dict:
        if req.all_platforms and req.platforms:
            raise errdefs.InvalidArgument("pull: give platforms or all_platforms, not both")
        options = PullOptions(
            platforms=tuple(req.platforms), all_platforms=req.all_platforms, unpack=req.unpack,
            snapshotter=req.snapshotter or self.config.snapshotter,
            max_concurrent_downloads=req.max_concurrent_downloads or self.config.max_concurrent_downloads)
        access = self.access(req.plain_http, req.hosts_dir, req.username, req.secret)
        return await self.run_pull(ctx, req.ref, options, access)

    @rpc(PushImage, stream="server")
    async def Push(self, ctx: CallContext, req: PushImage) -> dict:
        ns = ctx.namespace
        options = PushOptions(
            platforms=tuple(req.platforms),
            chunk_size=self.config.push_chunk_size if req.chunk_size < 0 else req.chunk_size,
            max_concurrent_uploads=req.max_concurrent_uploads or self.config.max_concurrent_uploaded_layers)
        access = self.access(req.plain_http, req.hosts_dir, req.username, req.secret)
        async with open_progress(ns, self.metadata.events.publish, ctx.send, parents=[req.ref]) as progress:
            summary = await self.pusher.push(ns, req.ref, req.local, options, access, progress=progress)
        return {"name": summary.name, "target": summary.target, "uploaded": summary.uploaded,
                "mounted": summary.mounted, "existing": summary.existing, "bytes": summary.bytes}


@plugin(TRANSFER, "registry", requires=(METADATA, DIFFER, LEASE, GC), config=RegistryTransferConfig)
async def init_registry_transfer(ic: InitContext) -> RegistryTransferService:
    config: RegistryTransferConfig = ic.config
    if config.max_concurrent_downloads < 1 or config.max_concurrent_uploaded_layers < 1:
        raise errdefs.InvalidArgument("max_concurrent_downloads and max_concurrent_uploaded_layers must be >= 1")
    metadata = ic.plugins.get_single(METADATA)
    differs = ic.plugins.get_by_type(DIFFER)
    differ = differs.get(config.differ) or next(iter(differs.values()), None)
    timeouts = Timeouts(connect=ic.timeouts(CONNECT), read=ic.timeouts(READ), write=ic.timeouts(READ),
                        request=ic.timeouts(REQUEST), token=ic.timeouts(TOKEN))
    leases = next(iter(ic.plugins.get_by_type(LEASE).values()), None)
    return RegistryTransferService(metadata, differ, leases, config, timeouts,
                                   lease_cleanup=ic.timeouts(LEASE_CLEANUP))
