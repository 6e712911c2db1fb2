"""A ``Content.Write`` whose bytes come from a file the client passed (SCM_RIGHTS), not from items.

The descriptor is untrusted input: it must be a regular file open for reading;
the content is the file from the descriptor's current position to the size it
had when checked (growth afterwards is ignored, shrinking gives a short ingest
that the size or digest check at commit refuses).  A declared ``total`` is checked
against that size before anything is written.  The bytes go through the open
writer exactly as streamed items do (same offsets, hashing, resume and commit),
read with ``pread`` into one reused page-aligned buffer, whose whole pages the
writer may write past the page cache (``directio.py``).  The daemon never maps
the client's file, so a file truncated under it cannot fault the process.  The RPC server
closes the descriptor when the call ends.
"""

from __future__ import annotations

import fcntl
import os
import stat

import attrs

from wire import errdefs

from . import directio
from .namespaced_writer import ContentWriter

CHUNK = 16 << 20  # bytes per pread, and per write+hash step of the writer


@attrs.frozen(kw_only=True)
class FileSource:
    fd: int
    start: int  # file position of the content's first byte
    size: int  # content bytes: from ``start`` to the end of the file when checked


def check_source(fd: int, ref: str) -> FileSource:
    """Refuse anything but a regular file open for reading (InvalidArgument naming the ref)."""
    try:
        st = os.fstat(fd)
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise errdefs.InvalidArgument(f"ref {ref!r}: the passed descriptor: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise errdefs.InvalidArgument(f"ref {ref!r}: the passed descriptor is not a regular file")
    if flags & os.O_PATH or flags & os.O_ACCMODE == os.O_WRONLY:
        raise errdefs.InvalidArgument(f"ref {ref!r}: the passed file is not open for reading")
    try:
        start = os.lseek(fd, 0, os.SEEK_CUR)
    except OSError as exc:
        raise errdefs.InvalidArgument(f"ref {ref!r}: the passed file: {exc.strerror}") from None
    return FileSource(fd=fd, start=start, size=max(0, st.st_size - start))


async def copy_source(writer: ContentWriter, source: FileSource, *, offset: int, total: int | None) -> int:
    """Write ``source`` into ``writer`` at ``offset`` (0 restarts, else the current offset).

    Returns the bytes copied.  A declared ``total`` that the file cannot meet is
    FailedPrecondition before any byte is written (the ingest stays, as after a
    streamed size mismatch).
    """
    if total is not None and offset + source.size != total:
        raise errdefs.FailedPrecondition(
            f"ref {writer.ref!r}: failed size validation: {offset + source.size} != {total}")
    await writer.write_at(offset, b"")  # the offset rule, and a shared ingest made real
    buf = directio.aligned_buffer(min(CHUNK, source.size))
    view = memoryview(buf)
    done = 0
    try:
        while done < source.size:
            want = min(len(buf), source.size - done)
            n = await writer.write_from(source.fd, source.start + done, view[:want], aligned=True)
            if n == 0:
                break  # the file shrank under us: commit's size or digest check tells
            done += n
    finally:
        view.release()
        buf.close()
    return done
