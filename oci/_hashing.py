"""A reader that hashes what passes through it and keeps small JSON documents."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

_WHITESPACE = b" \t\r\n"


class HashingReader:
    """Wraps a stream of ``size`` bytes: sha256 (and ``algorithm``) over what is read.

    ``head`` keeps the first bytes (compression sniffing); when ``retain_limit``
    allows and the content starts with ``{`` the whole content is kept in
    ``retained`` so manifests and configs can be walked after a single pass.
    """

    HEAD_SIZE = 16

    def __init__(self, raw: BinaryIO, size: int, *, algorithm: str = "sha256", retain_limit: int = 0):
        self._raw = raw
        self.size = size
        self.offset = 0
        self._sha256 = hashlib.sha256()
        self._other = hashlib.new(algorithm) if algorithm != "sha256" else None
        self.head = b""
        self._keep: bytearray | None = bytearray() if size <= retain_limit else None
        self._decided = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        remaining = self.size - self.offset
        if remaining <= 0:
            return b""
        chunk = self._raw.read(remaining if n is None or n < 0 else min(n, remaining))
        if chunk:
            self._take(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _take(self, chunk: bytes) -> None:
        self.offset += len(chunk)
        self._sha256.update(chunk)
        if self._other is not None:
            self._other.update(chunk)
        if len(self.head) < self.HEAD_SIZE:
            self.head += chunk[: self.HEAD_SIZE - len(self.head)]
        if self._keep is not None:
            self._keep += chunk
            if not self._decided:
                text = self._keep.lstrip(_WHITESPACE)
                if text:
                    self._decided = True
                    if text[:1] != b"{":
                        self._keep = None

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left unread."""
        while self.read(1 << 20):
            pass

    @property
    def sha256(self) -> str:
        return "sha256:" + self._sha256.hexdigest()

    def digest_as(self, algorithm: str) -> str:
        if algorithm == "sha256" or self._other is None:
            return self.sha256
        return f"{algorithm}:{self._other.hexdigest()}"

    @property
    def retained(self) -> bytes | None:
        if self._keep is None or not self._decided or self.offset != self.size:
            return None
        return bytes(self._keep)
