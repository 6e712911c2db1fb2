"""Strict streaming tar parsing on top of ``tarfile``'s ``r|`` mode.

``tarfile`` quietly ends the archive when a header after the first one is
garbage or truncated, and reads pax / GNU long-name blocks whole whatever
size they claim.  ``StrictTarInfo`` turns those cases into InvalidArgument and
caps the size of metadata blocks.
"""

from __future__ import annotations

import tarfile
from decimal import Decimal, InvalidOperation
from typing import Iterator, Protocol

from wire.errdefs import InvalidArgument

from .streams import Readable


class SizedReader(Readable, Protocol):
    size: int  # bytes read so far

MAX_METADATA_BLOCK = 16 << 20  # pax headers and GNU long names
_METADATA_TYPES = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}
XATTR_PREFIX = "SCHILY.xattr."


class _EndOfStream(Exception):
    """The stream ended exactly at a header boundary."""


class StrictTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        if len(buf) == 0:
            raise _EndOfStream()
        if len(buf) != tarfile.BLOCKSIZE:
            raise InvalidArgument("layer tar: truncated header")
        if buf.count(0) == tarfile.BLOCKSIZE:
            return super().frombuf(buf, encoding, errors)  # end-of-archive block
        try:
            info = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as exc:
            raise InvalidArgument(f"layer tar: invalid header ({exc})") from None
        if info.size < 0:
            raise InvalidArgument(f"layer tar entry {info.name!r}: negative size")
        if info.type in _METADATA_TYPES and info.size > MAX_METADATA_BLOCK:
            raise InvalidArgument(
                f"layer tar entry {info.name!r}: metadata block of {info.size} bytes is too large"
            )
        return info

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            raise
        except tarfile.HeaderError as exc:
            raise InvalidArgument(f"layer tar: invalid header ({exc})") from None


def iter_members(reader: SizedReader) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Yield (tar, member) for each entry; the member's data is readable
    through ``tar.extractfile(member)`` until the next one is requested.

    A stream of zero bytes is an empty layer; a stream that ends without the
    end-of-archive block, or with a broken header, → InvalidArgument.
    """
    try:
        tar = tarfile.open(
            fileobj=reader, mode="r|", tarinfo=StrictTarInfo,
            encoding="utf-8", errors="surrogateescape",
        )
    except _EndOfStream:
        if reader.size == 0:
            return
        raise InvalidArgument("layer tar: truncated (no end-of-archive block)") from None
    except tarfile.TarError as exc:
        raise InvalidArgument(f"layer tar: unreadable ({exc})") from None
    with tar:
        while True:
            try:
                member = tar.next()
            except _EndOfStream:
                raise InvalidArgument("layer tar: truncated (no end-of-archive block)") from None
            except tarfile.TarError as exc:
                raise InvalidArgument(f"layer tar: unreadable ({exc})") from None
            if member is None:
                return
            tar.members.clear()  # stream mode: don't keep every header in memory
            yield tar, member


def pax_time_ns(member: tarfile.TarInfo, key: str) -> int | None:
    """A pax time field in exact nanoseconds (tarfile keeps only a float)."""
    raw = member.pax_headers.get(key)
    if raw is None:
        return None
    try:
        return int(Decimal(raw) * 1_000_000_000)
    except (InvalidOperation, ValueError, OverflowError):
        return None


def member_xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    return {
        key[len(XATTR_PREFIX):]: value.encode("utf-8", "surrogateescape")
        for key, value in member.pax_headers.items()
        if key.startswith(XATTR_PREFIX)
    }
