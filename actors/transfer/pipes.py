"""Bridges between Trio channels and the synchronous file objects tar code wants.

``ChannelReader`` is read from a worker thread and pulls chunks from an async
source on the event loop; ``ChannelWriter`` is written from a worker thread and
sends chunks to a bounded memory channel (backpressure to the thread).
"""

from __future__ import annotations

from typing import Awaitable, Callable

import trio

CHUNK = 1 << 20


class ChannelReader:
    """A sequential file object over ``next_chunk()`` (an async function; None or b"" at the end)."""

    def __init__(self, next_chunk: Callable[[], Awaitable[bytes | None]]) -> None:
        self._next = next_chunk
        self._buffer = bytearray()
        self._eof = False
        self.received = 0  # bytes taken from the source so far

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        while not self._eof and (want < 0 or len(self._buffer) < want):
            chunk = trio.from_thread.run(self._next)
            if not chunk:
                self._eof = True
                break
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                from wire.errdefs import InvalidArgument

                raise InvalidArgument(f"stream item must be bytes, not {type(chunk).__name__}")
            self.received += len(chunk)
            self._buffer += chunk

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self._fill(-1)
            n = len(self._buffer)
        elif len(self._buffer) < n:
            self._fill(n)
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ChannelWriter:
    """A write-only file object that sends ``CHUNK``-sized pieces to ``send`` from a worker thread."""

    def __init__(self, send: trio.MemorySendChannel, chunk: int = CHUNK) -> None:
        self._send = send
        self._chunk = chunk
        self._buffer = bytearray()
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        self.written += len(data)
        while len(self._buffer) >= self._chunk:
            piece = bytes(self._buffer[: self._chunk])
            del self._buffer[: self._chunk]
            trio.from_thread.run(self._send.send, piece)
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        """Send what is buffered (call once, after the tar is closed)."""
        if self._buffer:
            trio.from_thread.run(self._send.send, bytes(self._buffer))
            self._buffer.clear()


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out += _leaves(inner)
        return out
    return [exc]


def unwrap_group(group: BaseExceptionGroup) -> BaseException:
    """The error worth reporting from a nursery's group: a typed error first, then any non-cancel."""
    leaves = _leaves(group)
    from wire.errdefs import DockyardError

    for exc in leaves:
        if isinstance(exc, DockyardError):
            return exc
    others = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    return others[0] if others else group


async def pump_from_thread(work: Callable[[ChannelWriter], None], emit: Callable[[bytes], Awaitable[None]],
                           *, depth: int = 4) -> int:
    """Run ``work(writer)`` in a worker thread and ``emit`` each chunk it writes; returns bytes written."""
    send, receive = trio.open_memory_channel(depth)
    out = ChannelWriter(send)

    async def consume() -> None:
        async with receive:
            async for chunk in receive:
                await emit(chunk)

    def run() -> None:
        work(out)
        out.finish()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            async with send:
                await trio.to_thread.run_sync(run)
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
    return out.written
