"""``Transfer.Import`` / ``Transfer.Export`` over msgpack-RPC.

Import is client-streaming: the request carries the options, the stream items
are the archive's bytes, the response lists the images (and what was
unpacked).  Progress goes out as ``/transfer/progress`` events.  Export is
server-streaming: items are the OCI tar's bytes, the response its size.
Both run under the caller's lease, or a temporary one deleted at the end.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.rpc.service import CallContext, Service, rpc
from oci.spec import ImageDefaults

from .exports import ExportOptions, export_archive
from .imports import Importer, ImportOptions, matcher_for
from .lease import transfer_lease


@attrs.frozen(kw_only=True)
class ImportArchive:
    base_name: str | None = None
    index_name: str = ""
    digests: bool = False
    skip_digest_for_named: bool = False
    all_platforms: bool = False
    platforms: list[str] = attrs.Factory(list)
    unpack: bool = True
    snapshotter: str = "overlayfs"


@attrs.frozen(kw_only=True)
class ExportArchive:
    names: list[str] = attrs.Factory(list)
    digests: list[str] = attrs.Factory(list)
    platforms: list[str] = attrs.Factory(list)
    all_platforms: bool = False


@attrs.frozen(kw_only=True)
class UnpackImage:
    name: str
    platform: str = ""
    snapshotter: str = "overlayfs"


class TransferService(Service):
    name = "Transfer"

    def __init__(self, metadata: Any, differ: Any, leases: Any, *, lease_cleanup: float = 10.0,
                 unpack_layer: float = 600.0, unpack_cleanup: float = 10.0) -> None:
        self.metadata = metadata
        self.differ = differ
        self.leases = leases
        self.lease_cleanup = lease_cleanup
        self.unpack_layer = unpack_layer
        self.unpack_cleanup = unpack_cleanup

    def _importer(self) -> Importer:
        return Importer(metadata=self.metadata, differ=self.differ, layer_timeout=self.unpack_layer,
                        cleanup_timeout=self.unpack_cleanup)

    def _lease(self, ctx: CallContext, ns: str):
        return transfer_lease(self.leases, ns, ctx.lease, cleanup_timeout=self.lease_cleanup)

    @rpc(ImportArchive, stream="client")
    async def Import(self, ctx: CallContext, req: ImportArchive) -> dict:
        ns = ctx.namespace
        options = ImportOptions(
            base_name=req.base_name, index_name=req.index_name, digests=req.digests,
            skip_digest_for_named=req.skip_digest_for_named, all_platforms=req.all_platforms,
            platforms=tuple(req.platforms), unpack=req.unpack, snapshotter=req.snapshotter)
        importer = self._importer()
        async with self._lease(ctx, ns) as lease:
            result = await importer.run(ns, ctx.items().__aiter__(), options, lease=lease)
        return {"images": list(result.images), "unpacked": result.unpacked, "bytes": result.bytes_read}

    @rpc(UnpackImage)
    async def Unpack(self, ctx: CallContext, req: UnpackImage) -> dict:
        """Unpack an image already in the content store (what ``images mount`` and ``run`` need first).

        Returns the top ``chain_id``, the ``image`` record and the image config's process
        defaults (``config``), so a client that runs the image needs no further reads.
        """
        ns = ctx.namespace
        importer = self._importer()
        image = await self.metadata.image_store.get(ns, req.name)
        matcher = matcher_for(False, [req.platform] if req.platform else [])
        options = ImportOptions(snapshotter=req.snapshotter)
        async with self._lease(ctx, ns) as lease:
            unpacked = await importer.unpack_images(ns, [image], options, matcher, lease)
        fs = unpacked[image.name]
        return {"chain_id": fs.chain_id, "image": image, "config": ImageDefaults.of(fs.config).to_wire()}

    @rpc(ExportArchive, stream="server")
    async def Export(self, ctx: CallContext, req: ExportArchive) -> dict:
        options = ExportOptions(names=tuple(req.names), digests=tuple(req.digests),
                                platforms=tuple(req.platforms), all_platforms=req.all_platforms)
        size = await export_archive(self.metadata, ctx.namespace, options, ctx.send)
        return {"bytes": size}
