"""Read a stream ahead in a helper thread (decompression and hashing beside extraction).

``read_ahead(source)`` is a context manager giving a reader whose bytes come
from ``source.read(BLOCK)`` called in a helper thread, up to ``DEPTH`` blocks
ahead.  zlib, zstd and hashlib release the GIL on large buffers, so inflating
and digesting a layer runs on another core while the caller parses tar headers
and creates files.  Errors raised by ``source`` (DataLoss, ...) are raised by
``read`` in the caller, in stream order.  Leaving the context stops the helper
and joins it, so no thread outlives the call that made it; ``source`` must not
block indefinitely (a file or the content store, never a socket).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Iterator

from .streams import Readable

BLOCK = 1 << 20
DEPTH = 8  # blocks in flight: bounds memory at DEPTH * BLOCK of output
_POLL = 0.1  # how often a producer blocked on a full queue looks at ``stop``


class _Stopped(Exception):
    pass


class ReadAheadReader:
    """The caller's end: ``read(size)`` over the blocks the helper produced."""

    def __init__(self, blocks: "queue.Queue[bytes | BaseException]") -> None:
        self._blocks = blocks
        self._buf = memoryview(b"")
        self._eof = False
        self.size = 0  # bytes handed to the caller so far

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [bytes(self._buf)]
            self._buf = memoryview(b"")
            while chunk := self._next():
                parts.append(chunk)
            out = b"".join(parts)
            self.size += len(out)
            return out
        if not self._buf:
            block = self._next()
            if not block:
                return b""
            self._buf = memoryview(block)
        out = bytes(self._buf[:size])
        self._buf = self._buf[size:]
        self.size += len(out)
        return out

    def drain(self) -> None:
        self._buf = memoryview(b"")
        while self._next():
            pass

    def _next(self) -> bytes:
        if self._eof:
            return b""
        item = self._blocks.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item:
            self._eof = True
        return item


def _produce(source: Readable, blocks: "queue.Queue[bytes | BaseException]", stop: threading.Event) -> None:
    def put(item: bytes | BaseException) -> None:
        while True:
            if stop.is_set():
                raise _Stopped()
            try:
                blocks.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    try:
        while True:
            block = source.read(BLOCK)
            put(block)
            if not block:
                return
    except _Stopped:
        return
    except BaseException as exc:  # handed to the reader, raised there
        with contextlib.suppress(_Stopped):
            put(exc)


@contextlib.contextmanager
def read_ahead(source: Readable) -> Iterator[ReadAheadReader]:
    blocks: "queue.Queue[bytes | BaseException]" = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()
    helper = threading.Thread(target=_produce, args=(source, blocks, stop), name="layer-read-ahead",
                              daemon=True)
    helper.start()
    try:
        yield ReadAheadReader(blocks)
    finally:
        stop.set()
        helper.join()
