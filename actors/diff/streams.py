"""Streaming readers and writers: digests, counting, (de)compression.

Everything works chunk by chunk so a layer is never held in memory.  A
decompressing reader always consumes its source to the end; corrupt or
truncated compressed data raises DataLoss.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import BinaryIO, Protocol

import attrs
import zstandard

from wire.errdefs import DataLoss

from .media import Compression

CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_PIECE = 2048


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@attrs.define(eq=False)
class DigestReader:
    """Passes bytes through while hashing (sha256) and counting them."""

    source: Readable
    size: int = 0
    _hash: "hashlib._Hash" = attrs.field(factory=hashlib.sha256)

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


@attrs.define(eq=False)
class DigestWriter:
    """Passes bytes through to ``sink`` while hashing and counting them."""

    sink: BinaryIO | "_CompressingWriter"
    size: int = 0
    _hash: "hashlib._Hash" = attrs.field(factory=hashlib.sha256)

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self.sink.write(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


@attrs.define(eq=False)
class _PeekReader:
    """Lets the first bytes be looked at without losing them."""

    source: Readable
    _head: bytes = b""

    def peek(self, size: int) -> bytes:
        while len(self._head) < size:
            more = self.source.read(size - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:size]

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self.source.read(size)


@attrs.define(eq=False)
class _GzipReader:
    """Multi-member gzip decompression with bounded output per read."""

    source: Readable
    _inflater: "zlib._Decompress" = attrs.field(factory=lambda: zlib.decompressobj(31))
    _pending: bytes = b""
    _ended: bool = False

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else max(size, 1)
        while not self._ended:
            if not self._pending:
                self._pending = self.source.read(CHUNK)
                if not self._pending:
                    if not self._inflater.eof:
                        raise DataLoss("gzip layer stream: truncated")
                    self._ended = True
                    break
            try:
                out = self._inflater.decompress(self._pending, want)
            except zlib.error as exc:
                raise DataLoss(f"gzip layer stream: corrupt ({exc})") from None
            self._pending = self._inflater.unconsumed_tail
            if self._inflater.eof:
                # Another member may follow (concatenated gzip).
                rest = self._inflater.unused_data + self._pending
                self._inflater = zlib.decompressobj(31)
                self._pending = rest
                if not rest:
                    self._pending = self.source.read(CHUNK)
                    if not self._pending:
                        self._ended = True
                        # mark the fresh inflater as not needed
                        return out
            if out:
                return out
        return b""


@attrs.define(eq=False)
class _ZstdReader:
    """Zstandard decompression across frames with bounded output per read."""

    source: Readable
    _dctx: zstandard.ZstdDecompressor = attrs.field(factory=zstandard.ZstdDecompressor)
    _obj: object = None
    _pending: bytes = b""
    _buffer: bytes = b""
    _ended: bool = False

    def __attrs_post_init__(self) -> None:
        self._obj = self._dctx.decompressobj()

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else max(size, 1)
        while not self._buffer and not self._ended:
            if not self._pending:
                self._pending = self.source.read(CHUNK)
                if not self._pending:
                    if not self._obj.eof:
                        raise DataLoss("zstd layer stream: truncated")
                    self._ended = True
                    break
            if self._obj.eof:
                self._obj = self._dctx.decompressobj()
            # Small input pieces bound the output of one call (zstd blocks can
            # expand ~32000x), so a hostile stream cannot balloon memory.
            data, self._pending = self._pending[:_ZSTD_PIECE], self._pending[_ZSTD_PIECE:]
            try:
                self._buffer = self._obj.decompress(data)
            except zstandard.ZstdError as exc:
                raise DataLoss(f"zstd layer stream: corrupt ({exc})") from None
            if self._obj.eof:
                self._pending = self._obj.unused_data + self._pending
        out, self._buffer = self._buffer[:want], self._buffer[want:]
        return out


def decompressing_reader(source: Readable, compression: Compression) -> Readable:
    """A reader of the uncompressed bytes of ``source``.

    When the media type says plain tar but the stream starts with gzip or zstd
    magic, the stream is decompressed anyway (what registries sometimes serve).
    """
    peek = _PeekReader(source)
    if compression is Compression.NONE:
        head = peek.peek(4)
        if head.startswith(_GZIP_MAGIC):
            compression = Compression.GZIP
        elif head.startswith(_ZSTD_MAGIC):
            compression = Compression.ZSTD
    if compression is Compression.GZIP:
        return _GzipReader(peek)
    if compression is Compression.ZSTD:
        return _ZstdReader(peek)
    return peek


@attrs.define(eq=False)
class _CompressingWriter:
    """Compresses what is written and passes it on to ``sink``."""

    sink: DigestWriter
    compression: Compression
    _engine: object = None

    def __attrs_post_init__(self) -> None:
        if self.compression is Compression.GZIP:
            self._engine = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif self.compression is Compression.ZSTD:
            self._engine = zstandard.ZstdCompressor(level=3, write_checksum=True).compressobj()

    def write(self, data: bytes) -> int:
        if self._engine is None:
            self.sink.write(data)
        else:
            out = self._engine.compress(data)
            if out:
                self.sink.write(out)
        return len(data)

    def close(self) -> None:
        if self._engine is not None:
            out = self._engine.flush()
            if out:
                self.sink.write(out)
            self._engine = None


@attrs.define(eq=False)
class LayerWriter:
    """tar bytes in; compressed bytes out to ``out``; both digests in one pass.

    ``write`` takes uncompressed tar bytes.  After ``close``, ``diff_id`` and
    ``uncompressed_size`` describe the tar, ``digest`` and ``size`` the blob.
    """

    out: BinaryIO
    compression: Compression
    _blob: DigestWriter = attrs.field(init=False)
    _compressor: _CompressingWriter = attrs.field(init=False)
    _tar: DigestWriter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._blob = DigestWriter(self.out)
        self._compressor = _CompressingWriter(self._blob, self.compression)
        self._tar = DigestWriter(self._compressor)

    def write(self, data: bytes) -> int:
        return self._tar.write(data)

    def close(self) -> None:
        self._compressor.close()

    @property
    def diff_id(self) -> str:
        return self._tar.digest()

    @property
    def uncompressed_size(self) -> int:
        return self._tar.size

    @property
    def digest(self) -> str:
        return self._blob.digest()

    @property
    def size(self) -> int:
        return self._blob.size
