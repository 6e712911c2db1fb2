"""``Content.*``: the namespaced content store over msgpack-RPC (reference §4.3).

Streams: ``List`` and ``Read`` are server streams; ``Write`` is a client stream
whose request carries ref/total/expected/offset and whose items are byte chunks
(1-4 MiB each is best); when the items end, the ingest is committed (``commit``,
the default) or closed for a later resume (``Status`` tells where to go on).
A ``Write`` cut off mid-stream keeps what reached the disk.  With ``source_fd``
the bytes come from a file the client passed with the request (``filesource.py``)
and items are not read.
"""

from __future__ import annotations

import attrs
import trio

from actors.rpc.service import CallContext, Service, rpc
from wire import errdefs

from . import directio, filesource
from .metadata import NamespacedContent
from .reader import clamp_range
from .writer import PARALLEL_MIN

READ_CHUNK = 1 << 20  # bytes per streamed Read item
LIST_BATCH = 500  # infos per streamed List item


@attrs.frozen(kw_only=True)
class InfoRequest:
    digest: str


@attrs.frozen(kw_only=True)
class UpdateRequest:
    digest: str
    labels: dict[str, str] = attrs.Factory(dict)
    update_mask: list[str] | None = None


@attrs.frozen(kw_only=True)
class ListRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class DeleteRequest:
    digest: str


@attrs.frozen(kw_only=True)
class ReadRequest:
    digest: str
    offset: int = 0
    size: int = 0


@attrs.frozen(kw_only=True)
class StatusRequest:
    ref: str


@attrs.frozen(kw_only=True)
class ListStatusesRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class AbortRequest:
    ref: str


@attrs.frozen(kw_only=True)
class WriteRequest:
    ref: str
    total: int | None = None  # declared final size
    expected: str = ""  # declared final digest
    offset: int = 0  # where the first item goes: 0 restarts, else the current offset
    commit: bool = True  # commit at the end of the items (else keep for resume)
    size: int = 0  # size to verify at commit (default: total)
    labels: dict[str, str] = attrs.Factory(dict)
    source_fd: int | None = None  # index of a descriptor passed with the request: read the bytes from it


class ContentService(Service):
    name = "Content"

    def __init__(self, store: NamespacedContent) -> None:
        self.store = store

    @rpc(InfoRequest)
    async def Info(self, ctx: CallContext, req: InfoRequest) -> dict:
        return {"info": await self.store.info(ctx.namespace, req.digest)}

    @rpc(UpdateRequest)
    async def Update(self, ctx: CallContext, req: UpdateRequest) -> dict:
        return {"info": await self.store.update(ctx.namespace, req.digest, req.labels, req.update_mask)}

    @rpc(ListRequest, stream="server")
    async def List(self, ctx: CallContext, req: ListRequest) -> dict:
        infos = await self.store.list(ctx.namespace, req.filters)
        for start in range(0, len(infos), LIST_BATCH):
            await ctx.send({"info": infos[start:start + LIST_BATCH]})
        return {"count": len(infos)}

    @rpc(DeleteRequest)
    async def Delete(self, ctx: CallContext, req: DeleteRequest) -> dict:
        await self.store.delete(ctx.namespace, req.digest, lease=ctx.lease)
        return {}

    @rpc(ReadRequest, stream="server")
    async def Read(self, ctx: CallContext, req: ReadRequest) -> dict:
        reader = await self.store.reader(ctx.namespace, req.digest)
        try:
            start, length = clamp_range(reader.size, req.offset, req.size)
            pos, end = start, start + length
            while pos < end:
                data = await trio.to_thread.run_sync(reader.read_at, pos, min(READ_CHUNK, end - pos))
                if not data:
                    raise errdefs.DataLoss(f"content {req.digest}: ended at {pos} of {reader.size} bytes")
                await ctx.send({"offset": pos, "data": data})
                pos += len(data)
        finally:
            reader.close()
        return {"size": pos - start}

    @rpc(StatusRequest)
    async def Status(self, ctx: CallContext, req: StatusRequest) -> dict:
        return {"status": await self.store.status(ctx.namespace, req.ref)}

    @rpc(ListStatusesRequest)
    async def ListStatuses(self, ctx: CallContext, req: ListStatusesRequest) -> dict:
        return {"statuses": await self.store.list_statuses(ctx.namespace, req.filters)}

    @rpc(AbortRequest)
    async def Abort(self, ctx: CallContext, req: AbortRequest) -> dict:
        await self.store.abort(ctx.namespace, req.ref, lease=ctx.lease)
        return {}

    @rpc(WriteRequest, stream="client")
    async def Write(self, ctx: CallContext, req: WriteRequest) -> dict:
        ns = ctx.namespace
        if req.offset < 0:
            raise errdefs.InvalidArgument(f"ref {req.ref!r}: offset {req.offset} must be >= 0")
        source = None
        if req.source_fd is not None:
            source = filesource.check_source(ctx.fd(req.source_fd, f"ref {req.ref!r}"), req.ref)
        writer = await self.store.writer(ns, req.ref, total=req.total, expected=req.expected or None,
                                         lease=ctx.lease)
        try:
            current = writer.offset
            if writer.shared and req.offset in (0, current):
                # The backend holds these bytes already (another namespace committed them):
                # answer now without reading the items; the client may stop sending.
                return await self._finish(writer, req)
            if req.offset and req.offset != current:
                raise errdefs.OutOfRange(
                    f"ref {req.ref!r}: write at offset {req.offset}, current offset is {current}")
            if source is not None:
                await filesource.copy_source(writer, source, offset=req.offset, total=req.total)
                return await self._finish(writer, req)
            first = True
            staging = directio.Staging(PARALLEL_MIN)
            async for item in ctx.items():
                if not isinstance(item, bytes):
                    raise errdefs.InvalidArgument(
                        f"ref {req.ref!r}: Write items must be bytes, not {type(item).__name__}")
                if first:
                    first = False
                    await writer.write_at(req.offset, item)
                else:
                    await writer.write(item, staging=staging)
            return await self._finish(writer, req)
        finally:
            with trio.CancelScope(shield=True):
                await writer.close()

    @staticmethod
    async def _finish(writer, req: WriteRequest) -> dict:
        """Commit (or keep for resume) at the end of a Write."""
        if not req.commit:
            status = writer.status()
            return {"ref": req.ref, "offset": status.offset, "total": status.total,
                    "digest": writer.digest(), "committed": False}
        size = req.size or req.total or 0
        digest = await writer.commit(size, req.expected or None, labels=req.labels)
        return {"ref": req.ref, "offset": writer.committed_size, "total": writer.committed_size,
                "digest": digest, "committed": True}
