"""The msgpack-RPC server plugin: binds the daemon socket and serves every service's methods."""

from __future__ import annotations

import logging
import os
import socket

import trio

from actors.core import Actor, ChildSpec
from actors.plugin import ALL, SERVER, InitContext, plugin
from actors.rpc.server import RPCServer
from actors.timeouts import RPC_REQUEST

log = logging.getLogger("dockyard.rpc")


class RPCServerActor(Actor):
    """Owns the listening socket; a restart re-binds it."""

    def __init__(self, server: RPCServer, path: str, uid: int, gid: int) -> None:
        self.server = server
        self.path = path
        self.uid = uid
        self.gid = gid

    async def on_start(self) -> None:
        listener = bind_unix(self.path, self.uid, self.gid)
        await self.nursery.start(self.server.serve, listener)
        log.info("serving msgpack-RPC on %s", self.path)

    def statistics(self) -> dict:
        stats = self.server.stats
        return {"address": self.path, "connections": stats.connections,
                "open_connections": stats.open_connections, "requests": stats.requests,
                "errors": stats.errors, "protocol_errors": stats.protocol_errors}


def bind_unix(path: str, uid: int, gid: int) -> trio.SocketListener:
    """Bind ``path`` mode 0660 owned uid:gid (the daemon already made sure no live daemon owns it)."""
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)  # never world-accessible, not even for an instant
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    os.chown(path, uid, gid)
    sock.listen(512)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


@plugin(SERVER, "rpc", requires=(ALL,))
async def init_rpc(ic: InitContext) -> RPCServer:
    methods = {}
    for instance in ic.plugins.instances():
        if hasattr(instance, "rpc_methods"):
            methods.update(instance.rpc_methods())
    rpc_config = ic.daemon.rpc
    server = RPCServer(methods, max_frame_size=rpc_config.max_frame_size,
                       default_timeout=ic.timeouts(RPC_REQUEST))
    await ic.spawn(ChildSpec(name="rpc-server", start=lambda: RPCServerActor(
        server, ic.address, rpc_config.uid, rpc_config.gid)))
    ic.export("address", ic.address)
    return server
