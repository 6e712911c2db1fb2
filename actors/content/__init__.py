"""The local content store backend: blobs and resumable ingests on disk."""

from .local import LocalStore
from .reader import ReaderAt, clamp_range
from .records import BlobInfo, IngestStatus
from .writer import Writer, WriterState

__all__ = [
    "BlobInfo",
    "IngestStatus",
    "LocalStore",
    "ReaderAt",
    "Writer",
    "WriterState",
    "clamp_range",
]
