"""Writing whole pages of a large ingest past the page cache (O_DIRECT).

Buffered writes of a big blob must first get fresh page-cache pages, and on a
busy machine (or a VM whose idle memory the host has taken back) that costs more
than the copy itself; a direct write goes from the caller's buffer to the disk.
Only page-aligned buffers at page-aligned offsets qualify (``aligned_buffer``
makes one); the rest of a write stays buffered.  Filesystems without O_DIRECT
(tmpfs) get ``-1`` from ``open_direct`` and every write stays buffered.
The written blob is not left in the page cache.
"""

from __future__ import annotations

import errno
import mmap
import os

ALIGN = 4096  # offsets, lengths and buffer addresses of direct writes are multiples of this


def aligned_buffer(size: int) -> mmap.mmap:
    """A page-aligned, writable buffer of ``size`` bytes (anonymous memory)."""
    return mmap.mmap(-1, max(size, ALIGN))


def open_direct(path: str) -> int:
    """A second, write-only O_DIRECT descriptor on ``path``; -1 where unsupported."""
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return -1
        raise


def direct_part(offset: int, length: int) -> int:
    """How many leading bytes of a write at ``offset`` may go direct (whole pages)."""
    if offset % ALIGN:
        return 0
    return length - length % ALIGN


class Staging:
    """One page-aligned buffer that a caller's large unaligned chunks are copied into,
    so that they too can go direct (a streamed item is a ``bytes`` object anywhere in
    memory).  The copy costs far less than fresh page cache.  Not thread-safe: one
    writer's chunks, one at a time."""

    def __init__(self, min_size: int) -> None:
        self.min_size = min_size
        self._buf: mmap.mmap | None = None

    def stage(self, data: bytes | bytearray | memoryview) -> memoryview | None:
        """``data`` copied to the start of the buffer, or None when it is too small to be worth it."""
        size = len(data)
        if size < self.min_size:
            return None
        if self._buf is None or len(self._buf) < size:
            self._buf = aligned_buffer(size)
        view = memoryview(self._buf)[:size]
        view[:] = data
        return view
