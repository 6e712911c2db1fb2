"""LocalStore: the content store backend on a local filesystem.

Layout under ``root`` (the caller passes ``<root>/io.dockyard.content.v1.content``):

    blobs/<alg>/<hex>     committed blobs, read-only, whole (never partial)
    ingest/<hex(sha256(ref))>/{ref,data,startedat,updatedat,total,expected}

Plain synchronous code: the daemon calls it through ``trio.to_thread.run_sync``.
No namespaces, labels or leases here; those live in the metadata layer above.
One process owns a root (the daemon's root lock file), so ref locks are
in-process only.  Errors:
    info/reader/read_range/delete of a missing blob     NotFound
    status/abort of a missing ingest                    NotFound
    abort of a ref with an open writer                  Unavailable
    writer on a locked ref                              Unavailable
    writer whose expected digest is already stored      AlreadyExists
    malformed digest or ref                             InvalidArgument
    read offset beyond the blob                         OutOfRange
"""

from __future__ import annotations

import os
import shutil
from typing import Callable

import attrs

from wire.errdefs import NotFound

from . import locks
from .digests import ALGORITHMS, CANONICAL, is_blob_name, parse_digest, validate_digest
from .ingest import TMP_PREFIX, IngestDir, ingest_dirname, validate_ref
from .reader import ReaderAt, clamp_range
from .records import BlobInfo, IngestStatus
from .writer import Writer, open_writer

BLOBS = "blobs"
INGEST = "ingest"


@attrs.define(eq=False)
class LocalStore:
    root: str = attrs.field(converter=os.path.abspath)
    _lock_root: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._lock_root = os.path.realpath(self.root)
        os.makedirs(os.path.join(self.root, BLOBS, CANONICAL), exist_ok=True)
        os.makedirs(self.ingest_root, exist_ok=True)
        self._drop_stale_tmp()

    @property
    def blobs_root(self) -> str:
        return os.path.join(self.root, BLOBS)

    @property
    def ingest_root(self) -> str:
        return os.path.join(self.root, INGEST)

    # -- blobs ---------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        """Where ``digest`` is (or would be) stored; InvalidArgument if malformed."""
        algorithm, hexpart = parse_digest(digest)
        return os.path.join(self.blobs_root, algorithm, hexpart)

    def exists(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def info(self, digest: str) -> BlobInfo:
        path = self.blob_path(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return _blob_info(validate_digest(digest), st)

    def reader(self, digest: str) -> ReaderAt:
        """Open the blob once; the reader outlives a concurrent delete."""
        path = self.blob_path(digest)
        try:
            return ReaderAt.open(path, digest)
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read_range(self, digest: str, offset: int = 0, size: int = 0) -> bytes:
        """Bytes of a Read: offset < 0 → 0; beyond the end → OutOfRange;
        size <= 0 or past the end → to the end."""
        with self.reader(digest) as reader:
            start, length = clamp_range(reader.size, offset, size)
            return reader.read_at(start, length)

    def walk(self, fn: Callable[[BlobInfo], object]) -> None:
        """Call ``fn`` with the info of every committed blob."""
        for algorithm in ALGORITHMS:
            try:
                entries = list(os.scandir(os.path.join(self.blobs_root, algorithm)))
            except FileNotFoundError:
                continue
            for entry in entries:
                if not is_blob_name(algorithm, entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while walking
                if entry.is_file(follow_symlinks=False):
                    fn(_blob_info(f"{algorithm}:{entry.name}", st))

    def list(self) -> list[BlobInfo]:
        found: list[BlobInfo] = []
        self.walk(found.append)
        return found

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    # -- ingests -------------------------------------------------------------

    def writer(
        self, ref: str, total: int | None = None, expected: str | None = None
    ) -> Writer:
        """Open (or resume) the ingest ``ref``; see Writer for its lifecycle."""
        return open_writer(
            lock_root=self._lock_root,
            blobs_root=self.blobs_root,
            ingest_root=self.ingest_root,
            blob_exists=self.exists,
            ref=ref,
            total=total,
            expected=expected,
        )

    def status(self, ref: str) -> IngestStatus:
        validate_ref(ref)
        try:
            status = self._ingest(ref).status()
        except NotFound:
            raise NotFound(f"ingest {ref!r}: not found") from None
        if status.ref != ref:  # a sha256 collision of refs: not ours
            raise NotFound(f"ingest {ref!r}: not found")
        return status

    def statuses(self) -> list[IngestStatus]:
        """Every ingest on disk, open or left for resume."""
        found: list[IngestStatus] = []
        for entry in os.scandir(self.ingest_root):
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                found.append(IngestDir(entry.path).status())
            except (NotFound, FileNotFoundError):
                continue  # removed meanwhile
        return found

    def abort(self, ref: str) -> None:
        """Drop the ingest ``ref``; Unavailable while a writer holds it."""
        validate_ref(ref)
        locks.try_lock(self._lock_root, ref)
        try:
            ingest = self._ingest(ref)
            if not ingest.exists():
                raise NotFound(f"ingest {ref!r}: not found")
            ingest.remove()
        finally:
            locks.unlock(self._lock_root, ref)

    def _ingest(self, ref: str) -> IngestDir:
        return IngestDir(os.path.join(self.ingest_root, ingest_dirname(ref)))

    def _drop_stale_tmp(self) -> None:
        # Half-built ingest dirs of a crashed process; this process owns the root.
        for entry in os.scandir(self.ingest_root):
            if entry.name.startswith(TMP_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)


def _blob_info(digest: str, st: os.stat_result) -> BlobInfo:
    return BlobInfo(
        digest=digest, size=st.st_size, created_at=st.st_mtime_ns, updated_at=st.st_atime_ns
    )
