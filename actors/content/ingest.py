"""One ingest directory: ``ingest/<hex(sha256(ref))>/``.

Files: ``ref`` (the ref, checked on reopen), ``data`` (the bytes so far; the
offset is its size), ``startedat`` / ``updatedat`` (RFC 3339 nano), and
``total`` / ``expected`` when declared.  Metadata files are written tmp+rename.
A new ingest is built in a ``.tmp-*`` dir and renamed into place, so an ingest
dir under its final name always has its ``ref`` file.

Refs are only ever used hashed, never as a path; they are still validated so a
hostile ref is refused loudly instead of silently stored.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import attrs

from wire.errdefs import InvalidArgument, NotFound

from .digests import validate_digest
from .records import IngestStatus
from .timestamps import format_rfc3339_nano, parse_rfc3339_nano

MAX_REF_BYTES = 4096
TMP_PREFIX = ".tmp-"

REF = "ref"
DATA = "data"
STARTED_AT = "startedat"
UPDATED_AT = "updatedat"
TOTAL = "total"
EXPECTED = "expected"


def validate_ref(ref: object) -> str:
    """Return ``ref`` if acceptable, else raise InvalidArgument."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument(f"ref {ref!r}: must be a non-empty string")
    try:
        encoded = ref.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"ref {ref!r}: not valid UTF-8") from None
    if len(encoded) > MAX_REF_BYTES:
        raise InvalidArgument(f"ref {ref[:64]!r}...: longer than {MAX_REF_BYTES} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ref):
        raise InvalidArgument(f"ref {ref!r}: contains control characters")
    if ref.startswith("/"):
        raise InvalidArgument(f"ref {ref!r}: must not be an absolute path")
    if any(part in (".", "..") for part in ref.split("/")):
        raise InvalidArgument(f"ref {ref!r}: must not contain '.' or '..' segments")
    return ref


def ingest_dirname(ref: str) -> str:
    return hashlib.sha256(ref.encode("utf-8")).hexdigest()


def write_text_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


@attrs.frozen(kw_only=True)
class IngestMeta:
    ref: str
    total: int | None
    expected: str | None
    started_at: int
    updated_at: int


@attrs.define(eq=False)
class IngestDir:
    """Files of one ingest; sync, and not locked itself (the Writer holds the lock)."""

    path: str

    @property
    def data_path(self) -> str:
        return os.path.join(self.path, DATA)

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def read_meta(self) -> IngestMeta:
        """Metadata on disk; NotFound if the ingest or its ref file is missing."""
        ref = _read_text(os.path.join(self.path, REF))
        if ref is None:
            raise NotFound(f"ingest {os.path.basename(self.path)}: not found")
        started = self._read_time(STARTED_AT)
        updated = self._read_time(UPDATED_AT)
        return IngestMeta(
            ref=ref,
            total=self._read_total(),
            expected=self._read_expected(),
            started_at=started,
            updated_at=updated if updated else started,
        )

    def offset(self) -> int:
        try:
            return os.stat(self.data_path).st_size
        except FileNotFoundError:
            return 0

    def status(self) -> IngestStatus:
        meta = self.read_meta()
        return IngestStatus(
            ref=meta.ref,
            offset=self.offset(),
            total=meta.total,
            expected=meta.expected,
            started_at=meta.started_at,
            updated_at=meta.updated_at,
        )

    def set_updated_at(self, ns: int) -> None:
        write_text_atomic(os.path.join(self.path, UPDATED_AT), format_rfc3339_nano(ns))

    def set_total(self, total: int) -> None:
        write_text_atomic(os.path.join(self.path, TOTAL), str(total))

    def set_expected(self, expected: str) -> None:
        write_text_atomic(os.path.join(self.path, EXPECTED), expected)

    def remove(self) -> None:
        # The known files, then the dir: much cheaper than rmtree on the commit path.
        for name in (DATA, REF, STARTED_AT, UPDATED_AT, TOTAL, EXPECTED):
            try:
                os.unlink(os.path.join(self.path, name))
            except OSError:
                pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        except OSError:  # something else inside (a stray .tmp): remove it all
            shutil.rmtree(self.path, ignore_errors=True)

    def _read_time(self, name: str) -> int:
        text = _read_text(os.path.join(self.path, name))
        if not text:
            return 0
        try:
            return parse_rfc3339_nano(text)
        except InvalidArgument:
            return 0

    def _read_total(self) -> int | None:
        text = _read_text(os.path.join(self.path, TOTAL))
        try:
            return int(text) if text else None
        except ValueError:
            return None

    def _read_expected(self) -> str | None:
        text = _read_text(os.path.join(self.path, EXPECTED))
        if not text:
            return None
        try:
            return validate_digest(text.strip())
        except InvalidArgument:
            return None


def create_ingest(
    ingest_root: str, ref: str, *, total: int | None, expected: str | None, now: int
) -> IngestDir:
    """Build a fresh ingest for ``ref`` (replacing any old one) and return it."""
    final = os.path.join(ingest_root, ingest_dirname(ref))
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=ingest_root)
    try:
        stamp = format_rfc3339_nano(now)
        for name, text in (
            (REF, ref),
            (STARTED_AT, stamp),
            (UPDATED_AT, stamp),
            (TOTAL, None if total is None else str(total)),
            (EXPECTED, expected),
        ):
            if text is not None:
                write_text_atomic(os.path.join(tmp, name), text)
        open(os.path.join(tmp, DATA), "xb").close()
        if os.path.lexists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return IngestDir(final)
