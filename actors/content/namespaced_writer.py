"""ContentWriter: one open ingest of the namespaced store (see ``metadata.py``).

A shared ingest (the backend already holds the expected blob) has no backend
writer; writing to it first copies the stored blob into a real one.  Commit
order: pin ``expected`` in meta.db, commit the backend (fsync + rename), then
the record transaction (record, ingest gone, lease joined) — so meta.db names
the bytes before they appear in ``blobs/`` and a crash leaves at worst an
orphan blob for GC, never a record without bytes.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator

import attrs
import trio

from wire import errdefs, identifiers

from .directio import Staging
from .records import IngestStatus
from .writer import Writer, WriterState

if TYPE_CHECKING:
    from .metadata import NamespacedContent

COPY_CHUNK = 4 << 20  # bytes per read when streaming a source or materialising a shared blob


@contextlib.contextmanager
def client_ref(bref: str, ref: str) -> Iterator[None]:
    """Errors of the backend name the backend ref; the client knows only its own."""
    try:
        yield
    except errdefs.DockyardError as exc:
        if repr(bref) not in exc.message:
            raise
        raise type(exc)(exc.message.replace(repr(bref), repr(ref))) from None


def copy_source(backend: Writer, source) -> None:
    """Write all of ``source`` into an open backend writer (sync, in a worker thread)."""
    if backend.offset:
        backend.truncate(0)  # a resumed ingest: the source starts at byte 0
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for pos in range(0, len(view), COPY_CHUNK):
            backend.write(view[pos:pos + COPY_CHUNK])
        return
    readinto = getattr(source, "readinto", None)
    if readinto is None:
        while chunk := source.read(COPY_CHUNK):
            backend.write(chunk)
        return
    buf = bytearray(COPY_CHUNK)
    view = memoryview(buf)
    while n := readinto(view):
        backend.write(view[:n])


@attrs.define(eq=False)
class ContentWriter:
    """An open namespaced ingest.  Get one from ``NamespacedContent.writer``.

    ``backend`` is None for a shared ingest (the bytes are already stored); a
    write to it first copies the stored blob into a real backend writer.
    """

    store: NamespacedContent
    namespace: str
    ref: str
    bref: str
    lease: str | None
    total: int | None
    expected: str | None
    started_at: int
    backend: Writer | None = None
    committed_size: int = 0
    _done: bool = False

    @property
    def shared(self) -> bool:
        return self.backend is None

    def status(self) -> IngestStatus:
        if self.backend is None:
            return IngestStatus(ref=self.ref, offset=self.total or 0, total=self.total, expected=self.expected,
                                started_at=self.started_at, updated_at=self.started_at)
        return attrs.evolve(self.backend.status(), ref=self.ref)

    @property
    def offset(self) -> int:
        return self.status().offset

    def digest(self) -> str:
        if self.backend is None:
            return self.expected or ""
        return self.backend.digest()

    async def write(self, data: bytes | bytearray | memoryview, *, staging: Staging | None = None) -> int:
        """Append ``data``; through ``staging`` (copied page-aligned) when it is large."""
        if self.backend is None:
            await self._materialise(copy=True)
        backend = self.backend

        def write() -> int:
            staged = staging.stage(data) if staging is not None else None
            if staged is None:
                return backend.write(data)
            with staged:
                return backend.write(staged, aligned=True)

        with client_ref(self.bref, self.ref):
            return await trio.to_thread.run_sync(write)

    async def write_from(self, fd: int, position: int, buf: memoryview, *, aligned: bool = False) -> int:
        """Read up to ``len(buf)`` bytes of file ``fd`` at ``position`` into ``buf`` and append them.

        One worker-thread hop per call; returns the bytes appended (0 at end of file).
        A failed read of the file is the caller's InvalidArgument, never a write error.
        ``aligned`` as for ``Writer.write``.
        """
        if self.backend is None:
            await self._materialise(copy=True)
        backend, ref = self.backend, self.ref

        def read_and_write() -> int:
            try:
                n = os.preadv(fd, [buf], position)
            except OSError as exc:
                raise errdefs.InvalidArgument(f"ref {ref!r}: reading the passed file: {exc.strerror}") from None
            return backend.write(buf[:n], aligned=aligned) if n else 0

        with client_ref(self.bref, self.ref):
            return await trio.to_thread.run_sync(read_and_write)

    async def write_at(self, offset: int, data: bytes | bytearray | memoryview) -> int:
        """containerd's rule: offset 0 restarts the ingest; otherwise it must be the current offset."""
        if self.backend is None:
            if offset != 0 and offset != self.total:
                raise errdefs.OutOfRange(f"ref {self.ref!r}: write at offset {offset}, current offset is {self.total}")
            await self._materialise(copy=offset != 0)
        with client_ref(self.bref, self.ref):
            return await trio.to_thread.run_sync(self.backend.write_at, offset, data)

    async def truncate(self, size: int) -> None:
        if size != 0:
            raise errdefs.NotImplemented_(f"ref {self.ref!r}: truncate to {size}: only 0 is supported")
        if self.backend is None:
            await self._materialise(copy=False)
        else:
            await trio.to_thread.run_sync(self.backend.truncate, 0)

    async def _materialise(self, *, copy: bool) -> None:
        """Turn a shared ingest into one with its own backend bytes."""
        store, bref, expected = self.store, self.bref, self.expected

        def open_and_copy() -> Writer:
            w = store.backend.writer(bref, total=None, expected=None)
            try:
                w.truncate(0)
                if copy and expected:
                    with store.backend.reader(expected) as r:
                        for pos in range(0, r.size, COPY_CHUNK):
                            w.write(r.read_at(pos, COPY_CHUNK))
            except BaseException:
                w.close()
                raise
            return w

        with client_ref(bref, self.ref):
            self.backend = await trio.to_thread.run_sync(open_and_copy)
        self.expected = None  # it named the blob to share; the bytes written now decide the digest
        with store.db.write() as tx:
            tx.execute("UPDATE ingests SET expected = '' WHERE namespace = ? AND ref = ?", (self.namespace, self.ref))

    async def commit(self, size: int = 0, expected: str | None = None,
                     labels: dict[str, str] | None = None) -> str:
        """Commit and return the digest.  Mismatch: FailedPrecondition (ingest kept);
        already committed in this namespace: AlreadyExists (the ingest is gone)."""
        if self._done:
            raise errdefs.FailedPrecondition(f"ref {self.ref!r}: writer already committed or closed")
        labels = dict(labels or {})
        try:
            identifiers.validate_labels(labels)
            expected = identifiers.validate_digest(expected) if expected else None
        except errdefs.InvalidArgument:
            await self.close()
            raise
        if self.backend is None:
            if size and size != self.total:
                raise errdefs.FailedPrecondition(f"ref {self.ref!r}: failed size validation: {self.total} != {size}")
            if expected and expected != self.expected:
                raise errdefs.FailedPrecondition(f"ref {self.ref!r}: unexpected digest {self.expected}, expected {expected}")
            actual, size = self.expected, self.total or 0
            if not await trio.to_thread.run_sync(self.store.backend.exists, actual):
                raise errdefs.NotFound(f"content {actual}: removed from the store while ingesting; write it again")
        else:
            actual, size = await self._commit_backend(size, expected or self.expected)
        self._done = True
        self.committed_size = size
        existed = self.store._record_commit(self.namespace, self.ref, actual, size, labels, self.lease)
        if existed:
            raise errdefs.AlreadyExists(f"content {actual}: already exists")
        return actual

    async def _commit_backend(self, size: int, expected: str | None) -> tuple[str, int]:
        w = self.backend
        offset = w.offset
        if size and size != offset:
            await self.close()
            raise errdefs.FailedPrecondition(f"ref {self.ref!r}: failed size validation: {offset} != {size}")
        digest = expected or w.digest()
        self.store._pin_expected(self.namespace, self.ref, self.bref, digest)
        try:
            with client_ref(self.bref, self.ref):
                actual = await trio.to_thread.run_sync(w.commit, offset, expected)
        except errdefs.AlreadyExists:
            actual = digest  # the backend already had these bytes (another namespace)
        except BaseException:
            self._done = w.state is not WriterState.OPEN
            with self.store.db.write() as tx:  # not committed: forget the pin
                tx.execute("UPDATE ingests SET expected = '' WHERE namespace = ? AND ref = ?",
                           (self.namespace, self.ref))
            raise
        return actual, offset

    async def close(self) -> None:
        """Release the ref; an uncommitted ingest stays for a later resume."""
        self._done = True
        if self.backend is not None:
            await trio.to_thread.run_sync(self.backend.close)

    async def __aenter__(self) -> ContentWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            await self.close()
