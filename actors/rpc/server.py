"""Serve msgpack-RPC on a stream (a unix socket): one task per connection,
one child task per in-flight request.

A malformed or oversized frame poisons only its own connection: the peer gets a
``$error`` notification with the reason and the connection is closed.  Handler
failures become typed error responses; nothing a client sends can take the
daemon down.  On a unix socket a request may carry descriptors (``fdpass.py``):
its call owns them and the server closes them when the call ends.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import trio

from actors.core.actor import collapse
from wire import codec, errdefs
from wire.converter import structure, unstructure

from . import fdpass
from .service import CallContext, Method, deadline_from

log = logging.getLogger("dockyard.rpc")

ERROR_NOTIFICATION = "$error"
MAX_IN_FLIGHT = 256  # per connection
STREAM_WINDOW = 16  # client items buffered per request before the reader pushes back
RECEIVE_SIZE = 256 * 1024  # bytes per read of the socket


@attrs.define(eq=False)
class _Call:
    scope: trio.CancelScope
    incoming: trio.MemorySendChannel | None = None


@attrs.define(eq=False)
class ServerStats:
    connections: int = 0
    open_connections: int = 0
    requests: int = 0
    errors: int = 0
    protocol_errors: int = 0


class Connection:
    """Serves one peer until it hangs up, breaks the protocol, or the server stops."""

    def __init__(self, stream: trio.abc.Stream, server: "RPCServer") -> None:
        self.stream = stream
        self.server = server
        self.codec = codec.Connection(max_frame_size=server.max_frame_size)
        self.send_lock = trio.Lock()
        self.calls: dict[int, _Call] = {}
        self.unix_socket = fdpass.unix_socket_of(stream)
        self.fds = fdpass.FdQueue()

    async def send(self, event: codec.Event) -> None:
        data = codec.encode(event)
        async with self.send_lock:
            await self.stream.send_all(data)

    async def serve(self) -> None:
        async with trio.open_nursery() as nursery:
            try:
                await self._read_loop(nursery)
            except codec.ProtocolError as exc:
                self.server.stats.protocol_errors += 1
                log.warning("closing connection: %s", exc.message)
                with trio.move_on_after(1):
                    try:
                        await self.send(codec.Notification(method=ERROR_NOTIFICATION, params=exc.to_wire()))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()
        self.fds.close()
        with trio.CancelScope(shield=True):
            await self.stream.aclose()

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        while True:
            if self.unix_socket is None:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            else:
                data, fds = await fdpass.receive_some(self.unix_socket, RECEIVE_SIZE)
                if fds:
                    self.fds.add(fds)
            if not data:
                return
            self.codec.receive_data(data)
            for event in self.codec.events():
                await self._dispatch(event, nursery)

    async def _dispatch(self, event: codec.Event, nursery: trio.Nursery) -> None:
        if isinstance(event, codec.Request):
            await self._start_call(event, nursery)
        elif isinstance(event, codec.StreamItem):
            call = self.calls.get(event.id)
            if call is not None and call.incoming is not None:
                try:
                    await call.incoming.send(event.item)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the handler stopped reading; its response says why
        elif isinstance(event, codec.StreamEnd):
            call = self.calls.get(event.id)
            if call is not None and call.incoming is not None:
                call.incoming.close()
        elif isinstance(event, codec.Cancel):
            call = self.calls.get(event.id)
            if call is not None:
                call.scope.cancel()
        else:
            raise codec.ProtocolError(f"a client may not send {type(event).__name__}")

    async def _start_call(self, req: codec.Request, nursery: trio.Nursery) -> None:
        self.server.stats.requests += 1
        fds = self.fds.take(req.meta.fds or 0, req.method)
        try:
            if req.id in self.calls:
                raise codec.ProtocolError(f"request id {req.id} is already in flight")
            if len(self.calls) >= MAX_IN_FLIGHT:
                await self._reply_error(req.id, errdefs.ResourceExhausted(
                    f"more than {MAX_IN_FLIGHT} requests in flight on one connection"))
                return
            method = self.server.methods.get(req.method)
            if method is None:
                await self._reply_error(req.id, errdefs.NotImplemented_(f"unknown method {req.method!r}"))
                return
            call = _Call(scope=trio.CancelScope())
            receive = None
            if method.stream in ("client", "bidi"):
                call.incoming, receive = trio.open_memory_channel(STREAM_WINDOW)
            self.calls[req.id] = call
            nursery.start_soon(self._run_call, req, method, call, receive, fds)
            fds = ()  # the call owns them now
        finally:
            self.fds.release(fds)

    async def _run_call(self, req: codec.Request, method: Method, call: _Call, receive,
                        fds: tuple[int, ...] = ()) -> None:
        try:
            await self._run_call_with(req, method, call, receive, fds)
        finally:
            self.fds.release(fds)

    async def _run_call_with(self, req: codec.Request, method: Method, call: _Call, receive,
                             fds: tuple[int, ...]) -> None:
        deadline = deadline_from(req.meta, self.server.default_timeout)
        if method.stream != "none":
            deadline = math.inf if req.meta.deadline is None else deadline
        ctx = CallContext(
            method=req.method,
            meta=req.meta,
            deadline=deadline,
            send_item=(lambda item: self.send(codec.StreamItem(id=req.id, item=unstructure(item))))
            if method.stream in ("server", "bidi") else None,
            incoming=receive,
            fds=fds,
        )
        error: errdefs.DockyardError | None = None
        result: Any = None
        try:
            with call.scope:
                call.scope.deadline = deadline
                request = structure(req.params, method.request)
                result = unstructure(await method.handler(ctx, request))
            if call.scope.cancelled_caught:
                if trio.current_time() >= deadline:
                    error = errdefs.DeadlineExceeded(f"{req.method}: deadline exceeded")
                else:
                    error = errdefs.Canceled(f"{req.method}: canceled by the client")
        except errdefs.DockyardError as exc:
            error = exc
        except Exception as exc:
            real = collapse(exc)  # a handler's nursery wraps a single error in a group
            if isinstance(real, errdefs.DockyardError):
                error = real
            else:
                log.exception("%s failed", req.method)
                error = errdefs.Internal(f"{req.method}: internal error: {type(real).__name__}: {real}")
        finally:
            self.calls.pop(req.id, None)
            if receive is not None:
                receive.close()
        if error is not None:
            self.server.stats.errors += 1
        try:
            await self.send(codec.Response(id=req.id, error=error, result=None if error else result))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _reply_error(self, rid: int, error: errdefs.DockyardError) -> None:
        self.server.stats.errors += 1
        await self.send(codec.Response(id=rid, error=error))


class RPCServer:
    """Accepts connections on a listener and serves the method table."""

    def __init__(self, methods: dict[str, Method], *, max_frame_size: int, default_timeout: float) -> None:
        self.methods = methods
        self.max_frame_size = max_frame_size
        self.default_timeout = default_timeout
        self.stats = ServerStats()

    async def serve(self, listener: trio.abc.Listener, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                stream = await listener.accept()
                nursery.start_soon(self._serve_one, stream)

    async def _serve_one(self, stream: trio.abc.Stream) -> None:
        self.stats.connections += 1
        self.stats.open_connections += 1
        try:
            await Connection(stream, self).serve()
        except Exception:  # a bug in one connection must not take the others down
            log.exception("connection handler failed")
        finally:
            self.stats.open_connections -= 1
