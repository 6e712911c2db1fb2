"""Descriptors passed beside a request (SCM_RIGHTS): the call owns them, the server closes them,
and a client that lies about them or floods them loses only its own connection."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading

import attrs
import pytest
import trio
import trio.testing

from actors.rpc import fdpass
from actors.rpc.server import RPCServer
from actors.rpc.service import CallContext, Method
from wire import codec, errdefs
from wire.client import Client, send_with_fds


@attrs.frozen(kw_only=True)
class ReadFd:
    index: int = 0


def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


async def read_fd(ctx: CallContext, req: ReadFd) -> dict:
    fd = ctx.fd(req.index, "Test.ReadFd")
    return {"data": os.pread(fd, 100, 0), "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
            "count": len(ctx.fds)}


async def hold(ctx: CallContext, req: ReadFd) -> dict:
    await trio.sleep_forever()  # a call that keeps its descriptors until the connection goes


METHODS = {"Test.ReadFd": Method(name="Test.ReadFd", request=ReadFd, handler=read_fd),
           "Test.Hold": Method(name="Test.Hold", request=ReadFd, handler=hold, stream="server")}


async def serve(path: str, nursery: trio.Nursery) -> RPCServer:
    server = RPCServer(METHODS, max_frame_size=1 << 20, default_timeout=5.0)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(8)
    await nursery.start(server.serve, trio.SocketListener(sock))
    return server


def in_thread(fn):
    return trio.to_thread.run_sync(fn)


@contextlib.asynccontextmanager
async def served(tmp_path):
    """A server on ``<tmp>/rpc.sock``; on the way out, every descriptor it received is closed again."""
    path = str(tmp_path / "rpc.sock")
    async with trio.open_nursery() as nursery:
        server = await serve(path, nursery)
        before = open_fds()
        yield path, server
        await trio.testing.wait_all_tasks_blocked()
        assert open_fds() - before == set()  # the server closed its copies
        nursery.cancel_scope.cancel()


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source"
    path.write_bytes(b"passed bytes")
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


async def test_a_passed_descriptor_reaches_the_handler_close_on_exec_and_is_closed_after(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def call():
            with Client(path, timeout=5) as c:
                return [c.call("Test.ReadFd", {}, fds=[source]), c.call("Test.ReadFd", {}, fds=[source])]

        with trio.fail_after(10):
            results = await in_thread(call)
        assert results == [{"data": b"passed bytes", "cloexec": True, "count": 1}] * 2


async def test_a_missing_index_is_invalid_argument_and_the_descriptors_are_still_closed(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def call():
            with Client(path, timeout=5) as c:
                c.call("Test.ReadFd", {"index": 1}, fds=[source])

        with trio.fail_after(10), pytest.raises(errdefs.InvalidArgument, match="descriptor 1 was not passed"):
            await in_thread(call)


async def test_descriptors_for_an_unknown_method_are_closed(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def call():
            with Client(path, timeout=5) as c:
                c.call("Test.Nope", {}, fds=[source, source])

        with trio.fail_after(10), pytest.raises(errdefs.NotImplemented_):
            await in_thread(call)


def _raw(path: str):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(5)
    return sock


def _events_until_close(sock) -> list:
    conn, events = codec.Connection(), []
    while chunk := sock.recv(65536):
        conn.receive_data(chunk)
        events.extend(conn.events())
    return events


async def test_a_request_that_declares_descriptors_it_did_not_send_breaks_only_its_connection(tmp_path):
    async with served(tmp_path) as (path, server):

        def lie():
            with _raw(path) as sock:
                meta = codec.Metadata(fds=2)
                sock.sendall(codec.encode(codec.Request(id=1, method="Test.ReadFd", params={}, meta=meta)))
                return _events_until_close(sock)

        with trio.fail_after(10):
            events = await in_thread(lie)
        assert [e.method for e in events] == ["$error"]
        assert "declares 2 descriptors, 0 arrived" in events[0].params[1]
        assert server.stats.protocol_errors == 1


async def test_unclaimed_descriptors_beyond_the_limit_break_the_connection_and_are_closed(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def flood():
            with _raw(path) as sock:
                for _ in range(fdpass.MAX_PENDING_FDS // 4 + 1):
                    socket.send_fds(sock, [b"\x93"], [source] * 4)  # a frame's first byte, never finished
                return _events_until_close(sock)

        with trio.fail_after(10):
            events = await in_thread(flood)
        assert len(events) == 1 and "descriptors held at once" in events[0].params[1]


async def test_too_many_descriptors_at_once_are_refused_and_closed(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def flood():
            with _raw(path) as sock:
                socket.send_fds(sock, [b"\x93"], [source] * (fdpass.MAX_PENDING_FDS + 8))
                return _events_until_close(sock)

        with trio.fail_after(10):
            events = await in_thread(flood)
        assert len(events) == 1 and "descriptors" in events[0].params[1]


def test_send_with_fds_sends_the_whole_frame(source):
    left, right = socket.socketpair()
    with left, right:
        frame = codec.encode(codec.Request(id=3, method="A.B", params={"x": b"y" * 100_000},
                                           meta=codec.Metadata(fds=1)))
        right.settimeout(5)

        sender = threading.Thread(target=send_with_fds, args=(left, frame, [source]))
        sender.start()
        got, fds = b"", []
        while len(got) < len(frame):
            data, more, _flags, _addr = socket.recv_fds(right, 1 << 20, 4)
            got += data
            fds += more
        sender.join()
        fdpass.close_all(fds)
        assert got == frame and len(fds) == 1


async def test_descriptors_owned_by_running_calls_count_against_the_limit(tmp_path, source):
    async with served(tmp_path) as (path, _server):

        def hog():
            with _raw(path) as sock:
                for rid in range(fdpass.MAX_PENDING_FDS // codec.MAX_CALL_FDS + 1):
                    meta = codec.Metadata(fds=codec.MAX_CALL_FDS)
                    frame = codec.encode(codec.Request(id=rid, method="Test.Hold", params={}, meta=meta))
                    send_with_fds(sock, frame, [source] * codec.MAX_CALL_FDS)
                return _events_until_close(sock)

        with trio.fail_after(10):
            events = await in_thread(hog)
        assert [e.method for e in events] == ["$error"] and "held at once" in events[0].params[1]
