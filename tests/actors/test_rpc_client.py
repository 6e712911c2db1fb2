"""actors.rpc.client.open_client: errors leave the context as themselves, never wrapped in a group."""

from __future__ import annotations

import socket

import attrs
import pytest
import trio

from actors.rpc.client import open_client
from actors.rpc.server import RPCServer
from actors.rpc.service import Method
from wire import errdefs


@pytest.fixture
def closing_server(tmp_path):
    """A unix socket that accepts one connection and closes it at once."""
    path = str(tmp_path / "s.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    yield path, sock
    sock.close()


async def test_the_bodys_own_error_comes_out_unwrapped(closing_server):
    path, _ = closing_server
    with pytest.raises(errdefs.NotFound, match="thing"):
        async with open_client(path):
            raise errdefs.NotFound("thing: not found")


async def test_a_peer_that_hangs_up_is_unavailable(closing_server):
    path, sock = closing_server
    with trio.fail_after(5):
        with pytest.raises(errdefs.Unavailable):
            async with open_client(path) as client:
                conn, _ = await trio.to_thread.run_sync(sock.accept)
                conn.close()
                async for _item in client.stream("Task.Events", {"after": 0}):
                    pass


@attrs.frozen(kw_only=True)
class Empty:
    pass


async def test_a_handlers_grouped_error_reaches_the_client_with_its_kind(tmp_path):
    async def fails(_ctx, _req):
        async with trio.open_nursery() as nursery:  # one failing child: trio wraps it in a group
            nursery.start_soon(_raise_not_found)

    async def _raise_not_found():
        raise errdefs.NotFound("widget 'w1': not found")

    server = RPCServer({"Test.Fails": Method(name="Test.Fails", request=Empty, handler=fails)},
                       max_frame_size=1 << 20, default_timeout=5.0)
    path = str(tmp_path / "rpc.sock")
    async with trio.open_nursery() as nursery:
        listener = trio.SocketListener(await _bound_unix_socket(path))
        await nursery.start(server.serve, listener)
        with trio.fail_after(5):
            async with open_client(path) as client:
                with pytest.raises(errdefs.NotFound, match="widget 'w1'"):
                    await client.call("Test.Fails", {}, timeout=5)
        nursery.cancel_scope.cancel()


async def _bound_unix_socket(path: str):
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(8)
    return sock
