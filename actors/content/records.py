"""Value types the local content store returns."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class BlobInfo:
    """A committed blob.  Times are int nanoseconds since the epoch."""

    digest: str
    size: int
    created_at: int  # file mtime, set at commit
    updated_at: int  # file atime, set at commit


@attrs.frozen(kw_only=True)
class IngestStatus:
    """An ingest in progress (or left behind for resume)."""

    ref: str
    offset: int  # bytes written so far (size of ``data``)
    total: int | None  # declared final size, if known
    expected: str | None  # declared final digest, if known
    started_at: int
    updated_at: int
