"""File descriptors a client passes beside its requests (SCM_RIGHTS on the unix socket).

The server reads with ``recvmsg`` and queues the descriptors in arrival order; a
request whose metadata says ``fds: n`` takes the next ``n`` (the client sends them
with the bytes of that request frame, so they are here by the time it is parsed).
Descriptors are received close-on-exec (no shim or runc ever inherits one);
one connection holds at most ``MAX_PENDING_FDS`` at a time, queued or owned by
its calls; everything not handed to a call is closed when the connection ends.
Truncated ancillary data breaks the connection.
"""

from __future__ import annotations

import array
import collections
import os
import socket

import trio

from wire import codec

MAX_PENDING_FDS = 16  # held per connection: queued, or owned by calls still running
ANCILLARY_SPACE = socket.CMSG_SPACE(MAX_PENDING_FDS * array.array("i").itemsize)


def unix_socket_of(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The unix socket under ``stream``, when there is one (else no descriptors travel)."""
    sock = getattr(stream, "socket", None)
    if sock is not None and sock.family == socket.AF_UNIX:
        return sock
    return None


async def receive_some(sock: trio.socket.SocketType, size: int) -> tuple[bytes, list[int]]:
    """Up to ``size`` bytes and the descriptors that came with them; b"" when the peer hung up."""
    try:
        data, ancdata, flags, _ = await sock.recvmsg(size, ANCILLARY_SPACE, socket.MSG_CMSG_CLOEXEC)
    except (ConnectionResetError, BrokenPipeError):
        return b"", []
    except OSError as exc:
        raise trio.BrokenResourceError(f"receive failed: {exc}") from exc
    fds = _fds_of(ancdata)
    if flags & socket.MSG_CTRUNC:
        close_all(fds)
        raise codec.ProtocolError(f"more than {MAX_PENDING_FDS} descriptors sent at once")
    return data, fds


def _fds_of(ancdata) -> list[int]:
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(payload[: len(payload) - len(payload) % arr.itemsize])
            fds.extend(arr)
    return fds


def close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class FdQueue:
    """Descriptors received on one connection, waiting for the request that claims them."""

    def __init__(self, limit: int = MAX_PENDING_FDS) -> None:
        self.limit = limit
        self._fds: collections.deque[int] = collections.deque()
        self.held_by_calls = 0

    def __len__(self) -> int:
        return len(self._fds)

    def add(self, fds: list[int]) -> None:
        if len(self._fds) + self.held_by_calls + len(fds) > self.limit:
            close_all(fds)
            raise codec.ProtocolError(
                f"more than {self.limit} descriptors held at once (sent and not yet claimed, or in calls still running)")
        self._fds.extend(fds)

    def take(self, count: int, method: str) -> tuple[int, ...]:
        """The next ``count`` descriptors, now owned by a call: give them back with ``release``."""
        if count > len(self._fds):
            raise codec.ProtocolError(
                f"{method}: request declares {count} descriptors, {len(self._fds)} arrived with it")
        self.held_by_calls += count
        return tuple(self._fds.popleft() for _ in range(count))

    def release(self, fds: tuple[int, ...]) -> None:
        """Close a call's descriptors."""
        close_all(fds)
        self.held_by_calls -= len(fds)

    def close(self) -> None:
        close_all(self._fds)
        self._fds.clear()
