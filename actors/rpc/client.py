"""A Trio msgpack-RPC client: many concurrent calls over one connection.

    async with open_client(path, namespace="default") as client:
        await client.call("Namespaces.List", timeout=5)

A reader task routes responses and stream items to their callers by id; every
call has a deadline.  Used by tests, benchmarks and the daemon's shim proxies.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from typing import Any, AsyncIterator

import attrs
import trio

from actors.core.actor import single_errors
from wire import codec, errdefs


@attrs.define(eq=False)
class _Pending:
    items: trio.MemorySendChannel
    receive: trio.MemoryReceiveChannel


class Client:
    def __init__(self, stream: trio.abc.Stream, *, namespace: str | None, max_frame_size: int) -> None:
        self._stream = stream
        self._codec = codec.Connection(max_frame_size=max_frame_size)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lock = trio.Lock()
        self.namespace = namespace
        self._closed: errdefs.DockyardError | None = None

    async def _send(self, event: codec.Event) -> None:
        if self._closed is not None:
            raise self._closed
        async with self._lock:
            try:
                await self._stream.send_all(codec.encode(event))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise errdefs.Unavailable("connection closed") from None

    async def _reader(self) -> None:
        reason: errdefs.DockyardError = errdefs.Unavailable("connection closed by peer")
        try:
            while True:
                data = await self._stream.receive_some(1 << 20)
                if not data:
                    break
                self._codec.receive_data(data)
                for event in self._codec.events():
                    if isinstance(event, codec.Notification) and event.method == "$error":
                        reason = errdefs.from_wire(event.params)
                        return
                    rid = getattr(event, "id", None)
                    pending = self._pending.get(rid)
                    if pending is None:
                        continue
                    if isinstance(event, codec.Response):
                        self._pending.pop(rid, None)
                    try:
                        await pending.items.send(event)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        self._pending.pop(rid, None)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except codec.ProtocolError as exc:
            reason = errdefs.Unavailable(f"protocol error from peer: {exc.message}")
        finally:
            self._closed = reason
            for pending in self._pending.values():
                pending.items.close()
            self._pending.clear()

    def _meta(self, namespace, lease, timeout) -> codec.Metadata:
        return codec.Metadata(
            namespace=namespace if namespace is not None else self.namespace,
            lease=lease,
            deadline=time.time_ns() + int(timeout * 1e9) if timeout and math.isfinite(timeout) else None,
        )

    def _open(self, buffer: float) -> tuple[int, _Pending]:
        rid = next(self._ids) % (2**32)
        send, receive = trio.open_memory_channel(buffer)
        pending = _Pending(items=send, receive=receive)
        self._pending[rid] = pending
        return rid, pending

    async def call(self, method: str, params: dict | None = None, *, timeout: float,
                   namespace: str | None = None, lease: str | None = None) -> Any:
        rid, pending = self._open(math.inf)
        with trio.move_on_after(timeout + 0.5) as scope:
            await self._send(codec.Request(id=rid, method=method, params=params or {},
                                           meta=self._meta(namespace, lease, timeout)))
            async for event in pending.receive:
                if isinstance(event, codec.Response):
                    if event.error is not None:
                        raise event.error
                    return event.result
            raise self._closed or errdefs.Unavailable("connection closed")
        self._pending.pop(rid, None)
        if scope.cancelled_caught:
            raise errdefs.DeadlineExceeded(f"{method}: no response within {timeout:g}s")

    async def stream(self, method: str, params: dict | None = None, *, namespace: str | None = None,
                     lease: str | None = None, buffer: int = 1024) -> AsyncIterator[Any]:
        """Yield the items of a server-streaming call; raises its final error, if any."""
        rid, pending = self._open(buffer)
        await self._send(codec.Request(id=rid, method=method, params=params or {},
                                       meta=self._meta(namespace, lease, None)))
        finished = False
        try:
            async for event in pending.receive:
                if isinstance(event, codec.StreamItem):
                    yield event.item
                else:
                    finished = True
                    if event.error is not None:
                        raise event.error
                    return
            raise self._closed or errdefs.Unavailable("connection closed")
        finally:
            if not finished and self._closed is None:
                self._pending.pop(rid, None)
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    with contextlib.suppress(errdefs.DockyardError):
                        await self._send(codec.Cancel(id=rid))

    async def upload(self, method: str, params: dict | None, items, *, timeout: float,
                     namespace: str | None = None, lease: str | None = None) -> Any:
        """A client-streaming call: send every item of the (async) iterable, then await the response."""
        rid, pending = self._open(math.inf)
        with trio.move_on_after(timeout + 0.5) as scope:
            await self._send(codec.Request(id=rid, method=method, params=params or {},
                                           meta=self._meta(namespace, lease, timeout)))
            if hasattr(items, "__aiter__"):
                async for item in items:
                    await self._send(codec.StreamItem(id=rid, item=item))
            else:
                for item in items:
                    await self._send(codec.StreamItem(id=rid, item=item))
            await self._send(codec.StreamEnd(id=rid))
            async for event in pending.receive:
                if isinstance(event, codec.Response):
                    if event.error is not None:
                        raise event.error
                    return event.result
            raise self._closed or errdefs.Unavailable("connection closed")
        self._pending.pop(rid, None)
        if scope.cancelled_caught:
            raise errdefs.DeadlineExceeded(f"{method}: no response within {timeout:g}s")


@contextlib.asynccontextmanager
async def open_client(address: str, *, namespace: str | None = None,
                      max_frame_size: int = codec.DEFAULT_MAX_FRAME, connect_timeout: float = 5.0):
    with trio.fail_after(connect_timeout):
        try:
            stream = await trio.open_unix_socket(address)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise errdefs.Unavailable(f"{address}: {exc.strerror or exc}") from None
    client = Client(stream, namespace=namespace, max_frame_size=max_frame_size)
    with single_errors():  # the body's own error comes out as itself: callers act on its kind
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(client._reader)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
