"""Random-access reads of one blob, and the Read range rule."""

from __future__ import annotations

import os

import attrs

from wire.errdefs import FailedPrecondition, InvalidArgument, OutOfRange


def clamp_range(blob_size: int, offset: int, size: int) -> tuple[int, int]:
    """(start, length) for a Read of ``size`` bytes at ``offset``.

    containerd's rule: offset < 0 reads from 0; offset > blob size is
    OutOfRange; size <= 0 or a range past the end reads to the end.
    """
    start = max(offset, 0)
    if start > blob_size:
        raise OutOfRange(f"read offset {offset} is beyond blob size {blob_size}")
    rest = blob_size - start
    return start, rest if size <= 0 or size > rest else size


@attrs.define(eq=False)
class ReaderAt:
    """A blob opened once: reads stay whole even if the blob is deleted meanwhile."""

    digest: str
    size: int
    _fd: int

    @classmethod
    def open(cls, path: str, digest: str) -> ReaderAt:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return cls(digest, size, fd)

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (short only at the end of the blob)."""
        if self._fd < 0:
            raise FailedPrecondition(f"reader for {self.digest}: closed")
        if offset < 0 or size < 0:
            raise InvalidArgument(
                f"reader for {self.digest}: offset {offset} and size {size} must be >= 0"
            )
        if offset > self.size:
            raise OutOfRange(
                f"reader for {self.digest}: offset {offset} is beyond blob size {self.size}"
            )
        size = min(size, self.size - offset)
        data = os.pread(self._fd, size, offset)
        if len(data) == size or not data:
            return data
        parts = [data]
        done = len(data)
        while done < size:  # short read: only if the file shrank under us
            more = os.pread(self._fd, size - done, offset + done)
            if not more:
                break
            parts.append(more)
            done += len(more)
        return b"".join(parts)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ReaderAt:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()
