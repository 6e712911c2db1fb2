"""Start writing an ingest's fresh pages to disk while the ingest goes on.

A large ingest otherwise piles up dirty page cache until the kernel throttles
the writer (on a machine where others write too, that throttling dominated a
1 GiB ingest) and commit's fsync then writes everything at once.
``sync_file_range(SYNC_FILE_RANGE_WRITE)`` only queues the range for writeback
and returns: durability still comes from the fsync at commit.  Linux only; a
no-op where the call is missing.
"""

from __future__ import annotations

import ctypes

from actors.libc import libc

SYNC_FILE_RANGE_WRITE = 2


def _load():
    try:
        fn = libc.sync_file_range
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Queue ``length`` bytes of ``fd`` at ``offset`` for writeback; errors are ignored
    (a failed hint costs speed, never data: commit still fsyncs)."""
    if _sync_file_range is not None and length > 0:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)
