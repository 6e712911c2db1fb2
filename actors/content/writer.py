"""Writer: one open ingest, appended to and hashed as it goes.

Lifecycle (the table ``_ALLOWED`` below is the whole state machine):

    open --write/write_at/truncate/status--> open
    open --close--> closed      (lock released, ingest kept for resume)
    open --commit ok / AlreadyExists--> committed   (lock released, ingest gone)
    open --commit mismatch--> closed                 (lock released, ingest kept)

Any call not allowed in the current state raises FailedPrecondition and
changes nothing.  All methods are blocking; async callers run them with
``trio.to_thread.run_sync``.  A Writer is not itself thread-safe: one caller
drives it at a time (the ref lock guarantees there is only one Writer per ref).
"""

from __future__ import annotations

import enum
import errno
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import attrs

from wire.errdefs import (
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    NotImplemented_,
    OutOfRange,
    ResourceExhausted,
)

from . import directio, dirsync, locks, writeback
from .digests import CANONICAL, digest_of, new_hasher, parse_digest, validate_digest
from .ingest import IngestDir, create_ingest, ingest_dirname, validate_ref
from .records import IngestStatus
from .timestamps import now_ns

READ_CHUNK = 4 << 20  # re-hash of a resumed ingest reads this much at a time
PARALLEL_MIN = 256 << 10  # writes at least this big are hashed while written
WRITE_THREADS = 4  # pool threads doing os.write for all writers of the process
UPDATED_AT_INTERVAL = 1.0  # seconds between ``updatedat`` rewrites while writing
BLOB_MODE = 0o444


class WriterState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    COMMITTED = "committed"


_ALLOWED: dict[str, frozenset[WriterState]] = {
    "write": frozenset({WriterState.OPEN}),
    "write_at": frozenset({WriterState.OPEN}),
    "truncate": frozenset({WriterState.OPEN}),
    "status": frozenset({WriterState.OPEN}),
    "commit": frozenset({WriterState.OPEN}),
    "digest": frozenset(WriterState),
    "close": frozenset(WriterState),  # idempotent
}


def _os_error(ref: str, action: str, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ResourceExhausted(f"ref {ref!r}: {action}: {exc.strerror}")
    return Internal(f"ref {ref!r}: {action}: {exc}")


@attrs.define(eq=False)
class Writer:
    """An open ingest.  Create with ``LocalStore.writer``, not directly."""

    _lock_root: str
    _blobs_root: str
    _ingest: IngestDir
    _ref: str
    _total: int | None
    _expected: str | None
    _started_at: int
    _fd: int
    _hasher: object
    _offset: int
    _updated_at: int = attrs.field(factory=now_ns)
    _flushed_at: float = attrs.field(factory=time.monotonic)
    _state: WriterState = WriterState.OPEN
    _direct_fd: int | None = None  # O_DIRECT twin of _fd, opened on first aligned write (-1: unsupported)

    # -- introspection -------------------------------------------------------

    @property
    def ref(self) -> str:
        return self._ref

    @property
    def state(self) -> WriterState:
        return self._state

    @property
    def offset(self) -> int:
        return self._offset

    def status(self) -> IngestStatus:
        self._require("status")
        return IngestStatus(
            ref=self._ref,
            offset=self._offset,
            total=self._total,
            expected=self._expected,
            started_at=self._started_at,
            updated_at=self._updated_at,
        )

    def digest(self) -> str:
        """Digest of the bytes written so far (no re-read)."""
        self._require("digest")
        return digest_of(self._hasher.copy())

    # -- writing -------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview, *, aligned: bool = False) -> int:
        """Append ``data`` at the current offset; return the bytes written.

        ``aligned``: ``data`` starts on a page boundary (``directio.aligned_buffer``),
        so whole pages of a large write may bypass the page cache.
        """
        self._require("write")
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        if len(view) >= PARALLEL_MIN:
            done = self._write_and_hash_in_parallel(view, self._direct() if aligned else -1)
        else:
            done = self._write_then_hash(view)
        return done

    def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """Write at ``offset``: the current offset, or 0 to restart the ingest."""
        self._require("write_at")
        if offset != self._offset:
            if offset != 0:
                raise OutOfRange(
                    f"ref {self._ref!r}: write at offset {offset}, "
                    f"current offset is {self._offset}"
                )
            self.truncate(0)
        return self.write(data)

    def truncate(self, size: int) -> None:
        """Drop everything written; only size 0 is supported."""
        self._require("truncate")
        if size != 0:
            raise NotImplemented_(f"ref {self._ref!r}: truncate to {size}: only 0 is supported")
        try:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
        except OSError as exc:
            raise _os_error(self._ref, "truncate", exc) from exc
        self._hasher = new_hasher(self._hasher.name)
        self._offset = 0
        self._touch()

    # -- ending --------------------------------------------------------------

    def commit(self, size: int, expected: str | None = None, *, fsync: bool = True) -> str:
        """Move the data into ``blobs/`` and return its digest.

        ``size`` <= 0 means "not checked".  ``expected`` defaults to the one
        given at open (``None`` or ``""``).  Mismatch → FailedPrecondition (ingest kept); blob
        already present → AlreadyExists (ingest dropped).  Either way, and on
        success, the ref lock is released.
        """
        self._require("commit")
        try:
            expected = validate_digest(expected) if expected else self._expected
            actual = self._finish_data(expected, fsync=fsync)
            if size > 0 and size != self._offset:
                raise FailedPrecondition(
                    f"ref {self._ref!r}: unexpected commit size {self._offset}, expected {size}"
                )
            if expected is not None and actual != expected:
                raise FailedPrecondition(
                    f"ref {self._ref!r}: unexpected commit digest {actual}, expected {expected}"
                )
            self._move_into_blobs(actual, fsync=fsync)
            return actual
        finally:
            self._release(flush=self._state is WriterState.OPEN)
            if self._state is WriterState.OPEN:
                self._state = WriterState.CLOSED

    def close(self) -> None:
        """Release the lock and keep the ingest for a later resume."""
        if self._state is WriterState.OPEN:
            self._release(flush=True)
            self._state = WriterState.CLOSED

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A dropped Writer must not keep its ref locked forever.
        if getattr(self, "_state", None) is WriterState.OPEN:
            self._release(flush=False)
            self._state = WriterState.CLOSED

    # -- internals -----------------------------------------------------------

    def _require(self, action: str) -> None:
        if self._state not in _ALLOWED[action]:
            raise FailedPrecondition(
                f"ref {self._ref!r}: cannot {action} a {self._state.value} writer"
            )

    def _write_then_hash(self, view: memoryview) -> int:
        fd, hasher, total = self._fd, self._hasher, len(view)
        done = 0
        try:
            while done < total:
                n = os.pwrite(fd, view[done:], self._offset + done)
                # Hash exactly what reached the file, so offset and digest
                # stay consistent even if a later write fails.
                hasher.update(view[done : done + n])
                done += n
        except OSError as exc:
            raise _os_error(self._ref, "write", exc) from exc
        finally:
            self._offset += done
            self._touch()
        return done

    def _direct(self) -> int:
        if self._direct_fd is None:
            try:
                self._direct_fd = directio.open_direct(self._ingest.data_path)
            except OSError:
                self._direct_fd = -1  # buffered writes still work: no reason to fail this one
        return self._direct_fd

    def _write_and_hash_in_parallel(self, view: memoryview, direct_fd: int) -> int:
        # os.write and hashlib both drop the GIL on large buffers: writing in
        # a pool thread while hashing here roughly doubles ingest throughput.
        future = _write_pool().submit(_write_all, self._fd, view, self._offset, direct_fd)
        try:
            self._hasher.update(view)
        finally:
            done, error = future.result()
            self._offset += done
            self._touch()
        if error is not None:
            # The hash ran ahead of the file: rebuild it from what is on disk.
            try:
                self._hasher = _hash_fd(self._fd, new_hasher(self._hasher.name))
            except OSError:
                self.close()
                raise _os_error(self._ref, "write", error) from error
            raise _os_error(self._ref, "write", error) from error
        return done

    def _touch(self) -> None:
        self._updated_at = now_ns()
        mono = time.monotonic()
        if mono - self._flushed_at >= UPDATED_AT_INTERVAL:
            self._flushed_at = mono
            self._flush_updated_at()

    def _flush_updated_at(self) -> None:
        try:
            self._ingest.set_updated_at(self._updated_at)
        except OSError:
            pass  # a status timestamp is not worth failing a write over

    def _release(self, *, flush: bool) -> None:
        if self._direct_fd is not None and self._direct_fd >= 0:
            try:
                os.close(self._direct_fd)
            except OSError:
                pass
        self._direct_fd = -1
        if self._fd >= 0:
            if flush:
                self._flush_updated_at()
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        locks.unlock(self._lock_root, self._ref)

    def _finish_data(self, expected: str | None, *, fsync: bool) -> str:
        """fsync the data and return its digest in ``expected``'s algorithm."""
        try:
            if fsync:
                os.fsync(self._fd)
            written = os.fstat(self._fd).st_size
        except OSError as exc:
            raise _os_error(self._ref, "commit", exc) from exc
        if written != self._offset:
            raise Internal(
                f"ref {self._ref!r}: data file has {written} bytes, writer counted {self._offset}"
            )
        algorithm = parse_digest(expected)[0] if expected else self._hasher.name
        if algorithm == self._hasher.name:
            return digest_of(self._hasher.copy())
        return digest_of(_hash_fd(self._fd, new_hasher(algorithm)))

    def _move_into_blobs(self, actual: str, *, fsync: bool) -> None:
        algorithm, hexpart = parse_digest(actual)
        blob_dir = os.path.join(self._blobs_root, algorithm)
        target = os.path.join(blob_dir, hexpart)
        now = now_ns()
        try:
            # Read-only and timed before it gets its public name: a file in
            # blobs/ is always whole and final.
            mode = os.fstat(self._fd).st_mode & 0o7777
            os.fchmod(self._fd, BLOB_MODE)
            try:
                os.utime(self._fd, ns=(now, now))
                os.makedirs(blob_dir, exist_ok=True)
                with locks.commit_guard:
                    present = os.path.lexists(target)
                    if not present:
                        os.rename(self._ingest.data_path, target)
            except OSError:
                os.fchmod(self._fd, mode)  # keep the ingest resumable
                raise
            if present:
                self._ingest.remove()
                self._state = WriterState.COMMITTED
                raise AlreadyExists(f"content {actual}: already exists")
            self._state = WriterState.COMMITTED
            if fsync:
                dirsync.fsync_dir(blob_dir)
            self._ingest.remove()
        except OSError as exc:
            raise _os_error(self._ref, "commit", exc) from exc


_pool_guard = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _write_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_guard:
        if _pool is None:
            _pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="content-write")
        return _pool


def _write_all(fd: int, view: memoryview, offset: int, direct_fd: int = -1) -> tuple[int, OSError | None]:
    """Write all of ``view`` at ``offset``; return (bytes written, the error that stopped it).

    With ``direct_fd`` (>= 0) whole pages go through it; the rest is buffered and
    queued for writeback at once.
    """
    done = 0
    if direct_fd >= 0:
        done = _write_direct(direct_fd, view, offset)
    buffered_from = done
    try:
        while done < len(view):
            done += os.pwrite(fd, view[done:], offset + done)
    except OSError as exc:
        return done, exc
    finally:
        writeback.start_writeback(fd, offset + buffered_from, done - buffered_from)
    return done, None


def _write_direct(fd: int, view: memoryview, offset: int) -> int:
    """Write the whole pages of ``view`` past the page cache; return how many bytes went.

    Stops early (the caller writes the rest buffered) on any refusal: a short
    write leaves the next offset unaligned, and a real I/O error repeats there.
    """
    done = 0
    while (part := directio.direct_part(offset + done, len(view) - done)) > 0:
        try:
            n = os.pwrite(fd, view[done:done + part], offset + done)
        except OSError:
            break
        if n <= 0:
            break
        done += n
    return done


def _hash_fd(fd: int, hasher):
    """Feed the whole file behind ``fd`` (from offset 0) into ``hasher``."""
    buf = bytearray(READ_CHUNK)
    view = memoryview(buf)
    pos = 0
    while True:
        n = os.preadv(fd, [view], pos)
        if n == 0:
            return hasher
        hasher.update(view[:n])
        pos += n


def open_writer(
    *,
    lock_root: str,
    blobs_root: str,
    ingest_root: str,
    blob_exists: Callable[[str], bool],
    ref: str,
    total: int | None = None,
    expected: str | None = None,
) -> Writer:
    """Lock ``ref`` and open (resume or create) its ingest."""
    validate_ref(ref)
    if total is not None and (not isinstance(total, int) or total < 0):
        raise InvalidArgument(f"ref {ref!r}: total {total!r} must be a non-negative int")
    expected = validate_digest(expected) if expected else None
    locks.try_lock(lock_root, ref)
    try:
        if expected is not None and blob_exists(expected):
            raise AlreadyExists(f"content {expected}: already exists")
        return _resume(lock_root, blobs_root, ingest_root, ref, total, expected) or _fresh(
            lock_root, blobs_root, ingest_root, ref, total, expected
        )
    except BaseException:
        locks.unlock(lock_root, ref)
        raise


def _resume(lock_root, blobs_root, ingest_root, ref, total, expected) -> Writer | None:
    ingest = IngestDir(os.path.join(ingest_root, ingest_dirname(ref)))
    try:
        meta = ingest.read_meta()
    except NotFound:
        return None
    if (
        meta.ref != ref
        or (total is not None and meta.total is not None and total != meta.total)
        or (expected is not None and meta.expected is not None and expected != meta.expected)
    ):
        return None  # inconsistent: the caller recreates it
    try:
        fd = os.open(ingest.data_path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        if total is not None and meta.total is None:
            ingest.set_total(total)
        if expected is not None and meta.expected is None:
            ingest.set_expected(expected)
        expected = expected or meta.expected
        algorithm = parse_digest(expected)[0] if expected else CANONICAL
        hasher = _hash_fd(fd, new_hasher(algorithm))
        offset = os.lseek(fd, 0, os.SEEK_END)
    except BaseException:
        os.close(fd)
        raise
    return Writer(
        lock_root, blobs_root, ingest, ref, meta.total if total is None else total,
        expected, meta.started_at, fd, hasher, offset,
    )


def _fresh(lock_root, blobs_root, ingest_root, ref, total, expected) -> Writer:
    now = now_ns()
    ingest = create_ingest(ingest_root, ref, total=total, expected=expected, now=now)
    fd = os.open(ingest.data_path, os.O_RDWR)
    algorithm = parse_digest(expected)[0] if expected else CANONICAL
    return Writer(
        lock_root, blobs_root, ingest, ref, total, expected, now, fd,
        new_hasher(algorithm), 0, updated_at=now,
    )
