"""actors.rpc.client.open_client: errors leave the context as themselves, never wrapped in a group."""

from __future__ import annotations

import socket

import pytest
import trio

from actors.rpc.client import open_client
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
