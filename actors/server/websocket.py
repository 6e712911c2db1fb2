"""The websocket event stream: ``ws://127.0.0.1:<port>/events?filter=...&since=N``.

A client must present the bearer token (``Authorization: Bearer <token>``, or
``?token=`` for browsers, which cannot set headers).  The token lives in a 0600
file the daemon creates when missing.  Each envelope is one JSON text message.
A slow consumer is closed with code 4008 and the reason "fell behind at N"; a
``since`` older than the backlog is refused with code 4004 and says so.

The port is bound at start-up, but trio-websocket (with wsproto, ~25 ms of
imports) is loaded only when the first client knocks: most daemon starts
never serve a websocket, and a restart should answer RPCs first.
"""

from __future__ import annotations

import base64
import hmac
import importlib
import json
import logging
import os
import secrets
import urllib.parse
from typing import TYPE_CHECKING

import trio

from actors.core import Actor, ChildSpec
from actors.plugin import EVENT, SERVER, InitContext, SkipPlugin, plugin
from wire import errdefs
from wire.converter import unstructure

if TYPE_CHECKING:
    from trio_websocket import WebSocketRequest

log = logging.getLogger("dockyard.websocket")

CLOSE_FELL_BEHIND = 4008
CLOSE_NOT_KEPT = 4004
CLOSE_BAD_REQUEST = 4000


def load_or_create_token(path: str) -> str:
    """Read the token file, creating it (0600, 32 random bytes) when missing."""
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise errdefs.PermissionDenied(f"token file {path} must not be readable by others (mode 0600)")
        with open(path) as fh:
            token = fh.read().strip()
        if not token:
            raise errdefs.InvalidArgument(f"token file {path} is empty")
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


async def _knock(listener: trio.SocketListener, done: trio.CancelScope) -> None:
    await trio.lowlevel.wait_readable(listener.socket)  # a connection waits in the backlog
    done.cancel()


def _json_default(value):
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")


class WebsocketServer(Actor):
    def __init__(self, events, host: str, port: int, token: str, addr_file: str) -> None:
        self.events = events
        self.host = host
        self.port = port
        self.token = token
        self.addr_file = addr_file
        self.clients = 0
        self.refused = 0
        self._ws = None  # the trio_websocket module, once the first client has called

    async def on_start(self) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        ports = {listener.socket.getsockname()[1] for listener in listeners}
        if len(ports) != 1:
            for listener in listeners:
                listener.socket.close()
            raise errdefs.InvalidArgument(
                f"websocket address {self.host}:{self.port}: binds {len(listeners)} sockets on different ports; "
                "give one address or a fixed port")
        (self.port,) = ports
        self.nursery.start_soon(self._serve_from_first_client, listeners)
        with open(self.addr_file + ".tmp", "w") as fh:
            fh.write(f"{self.host}:{self.port}\n")
        os.replace(self.addr_file + ".tmp", self.addr_file)
        log.info("websocket events on ws://%s:%d/events", self.host, self.port)

    async def _serve_from_first_client(self, listeners: list[trio.SocketListener]) -> None:
        """Wait (not accepting) until a client knocks, then load trio-websocket and serve for good."""
        try:
            async with trio.open_nursery() as knocks:
                for listener in listeners:
                    knocks.start_soon(_knock, listener, knocks.cancel_scope)
            self._ws = await trio.to_thread.run_sync(importlib.import_module, "trio_websocket")
            await self._ws.WebSocketServer(self.handle, listeners).run()
        finally:
            for listener in listeners:
                listener.socket.close()

    def _authorized(self, request: WebSocketRequest, query: dict[str, list[str]]) -> bool:
        presented = ""
        for name, value in request.headers:
            if name.lower() == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    presented = rest.strip()
        if not presented and query.get("token"):
            presented = query["token"][0]
        return bool(presented) and hmac.compare_digest(presented.encode(), self.token.encode())

    async def handle(self, request: WebSocketRequest) -> None:
        url = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.rstrip("/") != "/events":
            self.refused += 1
            await request.reject(404, body=b"not found: use /events\n")
            return
        if not self._authorized(request, query):
            self.refused += 1
            await request.reject(401, extra_headers=[(b"WWW-Authenticate", b"Bearer")],
                                 body=b"unauthorized: a bearer token is required\n")
            return
        ws = await request.accept()
        self.clients += 1
        try:
            await self._stream(ws, query)
        except self._ws.ConnectionClosed:
            pass
        finally:
            self.clients -= 1

    async def _stream(self, ws, query: dict[str, list[str]]) -> None:
        try:
            since = int(query["since"][0]) if query.get("since") else None
            sub = self.events.exchange.subscribe(query.get("filter", []), since=since)
        except ValueError:
            await ws.aclose(CLOSE_BAD_REQUEST, "since must be an integer")
            return
        except errdefs.OutOfRange as exc:
            await ws.aclose(CLOSE_NOT_KEPT, exc.message[:120])
            return
        except errdefs.DockyardError as exc:
            await ws.aclose(CLOSE_BAD_REQUEST, exc.message[:120])
            return
        try:
            async for envelope in sub:
                await ws.send_message(json.dumps(unstructure(envelope), default=_json_default))
        except errdefs.ResourceExhausted as exc:
            seq = getattr(exc, "seq", "?")
            await ws.aclose(CLOSE_FELL_BEHIND, f"fell behind at {seq}")
        finally:
            self.events.exchange.unsubscribe(sub)

    def statistics(self) -> dict:
        return {"address": f"{self.host}:{self.port}", "clients": self.clients, "refused": self.refused}


@plugin(SERVER, "websocket", requires=(EVENT,))
async def init_websocket(ic: InitContext) -> WebsocketServer | None:
    config = ic.daemon.websocket
    if not config.enabled:
        raise SkipPlugin("websocket disabled in config")
    host, _, port = config.address.rpartition(":")
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        raise errdefs.InvalidArgument(f"websocket address {config.address}: only loopback addresses are allowed")
    token = load_or_create_token(ic.daemon.token_file)
    events = ic.plugins.get_single(EVENT)
    addr_file = os.path.join(ic.daemon_state, "websocket.addr")
    await ic.spawn(ChildSpec(name="websocket", start=lambda: WebsocketServer(
        events, host.strip("[]"), int(port), token, addr_file)))
    ic.export("token_file", ic.daemon.token_file)
    ic.export("address_file", addr_file)
    return None
