"""The shim's RPC server: msgpack-RPC (wire.codec) on a unix socket, driven by the loop.

Unary ``Task.*`` calls run as loop Tasks and answer when their coroutine ends;
``Task.Events`` is a server stream (backlog after the cursor, then live events)
that lasts until the client cancels it or goes away.  A connection that breaks the
framing rules is closed; the shim and its other connections carry on.
"""

from __future__ import annotations

import socket
import sys

from wire import codec, errdefs

from .loop import EPOLLIN, EPOLLOUT
from .service import Call

EVENTS_METHOD = "Task.Events"
MAX_OUTBUF = 64 * 1024 * 1024  # a peer that stops reading this long is dropped


class Connection:
    def __init__(self, server: "Server", sock: socket.socket) -> None:
        self.server = server
        self.loop = server.loop
        self.sock = sock
        self.fd = sock.fileno()
        self.codec = codec.Connection()
        self.out = bytearray()
        self.closed = False
        self.streams: set[int] = set()
        sock.setblocking(False)
        self.loop.watch(self.fd, EPOLLIN, self._ready)

    def _ready(self, events: int) -> None:
        if events & EPOLLOUT:
            self._flush()
        if events & ~EPOLLOUT and not self.closed:
            self._read()

    def _read(self) -> None:
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        try:
            self.codec.receive_data(data)
            for event in self.codec.events():
                self._dispatch(event)
        except codec.ProtocolError as e:
            self.send(codec.Notification(method="$error", params=e.to_wire()))
            self.close()

    def _dispatch(self, event) -> None:
        if isinstance(event, codec.Request):
            self.server.handle(self, event)
        elif isinstance(event, codec.Cancel):
            if event.id in self.streams:
                self.end_stream(event.id, errdefs.Canceled(f"request {event.id}: cancelled"))

    def send(self, event) -> None:
        if self.closed:
            return
        self.out += codec.encode(event)
        if len(self.out) > MAX_OUTBUF:
            self.close()
            return
        self._flush()

    def _flush(self) -> None:
        try:
            while self.out:
                n = self.sock.send(self.out)
                del self.out[:n]
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        self.loop.watch(self.fd, EPOLLIN | EPOLLOUT if self.out else EPOLLIN, self._ready)

    def end_stream(self, rid: int, error: errdefs.DockyardError | None = None) -> None:
        self.streams.discard(rid)
        self.server.service.events.unsubscribe((self, rid))
        self.send(codec.Response(id=rid, error=error, result=None))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for rid in list(self.streams):
            self.server.service.events.unsubscribe((self, rid))
        self.streams.clear()
        self.loop.unwatch(self.fd)
        self.sock.close()
        self.server.connections.discard(self)


class Server:
    def __init__(self, loop, listener: socket.socket, service) -> None:
        self.loop = loop
        self.listener = listener
        self.service = service
        self.connections: set[Connection] = set()
        listener.setblocking(False)
        loop.watch(listener.fileno(), EPOLLIN, self._accept)

    def _accept(self, _events: int) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError:
                return
            self.connections.add(Connection(self, sock))

    def handle(self, conn: Connection, req: codec.Request) -> None:
        params = req.params if isinstance(req.params, dict) else {}
        if req.method == EVENTS_METHOD:
            after = params.get("after", 0)
            if not isinstance(after, int) or isinstance(after, bool):
                conn.send(codec.Response(id=req.id, error=errdefs.InvalidArgument("after: must be an integer")))
                return
            conn.streams.add(req.id)
            self.service.events.subscribe(
                (conn, req.id), lambda env: conn.send(codec.StreamItem(id=req.id, item=env)), after)
            return
        handler = self.service.methods.get(req.method)
        if handler is None:
            conn.send(codec.Response(id=req.id, error=errdefs.NotImplemented_(f"method {req.method!r}: not implemented")))
            return
        call = Call(req.meta.namespace, req.meta.deadline)

        def done(result, exc) -> None:
            if exc is None:
                conn.send(codec.Response(id=req.id, result=result))
                return
            if not isinstance(exc, errdefs.DockyardError):
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
                exc = errdefs.Internal(f"{req.method}: {type(exc).__name__}: {exc}")
            conn.send(codec.Response(id=req.id, error=exc))

        try:
            coro = handler(call, params)
        except Exception as e:  # pragma: no cover - handlers are coroutine functions
            done(None, e)
            return
        self.loop.spawn(coro, done)

    def close(self) -> None:
        for conn in list(self.connections):
            conn._flush()
            conn.close()
        self.loop.unwatch(self.listener.fileno())
        self.listener.close()
