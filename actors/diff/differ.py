"""``Differ``: layer blobs from the content store onto mounts, and mounts into new blobs.

``apply`` reads the blob through ``metadata.content_store`` and extracts it in
a worker thread (see ``mounted``); it answers the uncompressed layer's
descriptor (digest = DiffID).  ``compare`` writes the layer into a spool file
(never memory) in a worker thread, then ingests it with
``containerd.io/uncompressed=<DiffID>``; a blob that is already there is a
success (it joins the lease and gets the labels).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
from typing import Any, Sequence

import attrs
import trio

from actors.mount import MNT_DETACH, Mount, unmount_all
from oci.descriptor import Descriptor
from oci.identity import LABEL_UNCOMPRESSED
from wire.errdefs import NotImplemented_
from wire.identifiers import validate_labels

from .media import COMPRESSION_MEDIA_TYPE, MEDIA_TYPE_TAR_GZIP, Compression, layer_compression
from .mounted import apply_to_mounts, compare_mounts


class _Sequential:
    """A ``read(n)`` file over a content ReaderAt, reading ahead ``BLOCK`` bytes per pread.

    Sync: used in the worker thread.  Plain tar layers are read in small
    records, so the read-ahead saves a system call per record.
    """

    BLOCK = 1 << 20

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._offset = 0  # of the next read_at
        self._buf = memoryview(b"")
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = bytes(self._buf[self._pos:])
            self._buf, self._pos = memoryview(b""), 0
            tail = self._reader.read_at(self._offset, self._reader.size - self._offset)
            self._offset += len(tail)
            return rest + tail
        if self._pos >= len(self._buf):
            if self._offset >= self._reader.size or size == 0:
                return b""
            self._buf = memoryview(self._reader.read_at(self._offset, max(size, self.BLOCK)))
            self._offset += len(self._buf)
            self._pos = 0
        end = min(self._pos + size, len(self._buf))
        out = bytes(self._buf[self._pos:end])
        self._pos = end
        return out


def compression_for(media_type: str) -> Compression:
    """What ``compare`` writes for ``media_type``: tar, tar+gzip, tar+zstd; else NotImplemented_."""
    for compression, known in COMPRESSION_MEDIA_TYPE.items():
        if known == media_type:
            return compression
    raise NotImplemented_(f"diff media type {media_type!r}: not supported "
                          f"(use one of {', '.join(sorted(COMPRESSION_MEDIA_TYPE.values()))})")


def unique_ref() -> str:
    return f"diff-{time.time_ns()}-{secrets.token_hex(4)}"


@attrs.define(eq=False)
class Differ:
    content: Any  # NamespacedContent: reader(ns, digest), ingest(ns, ref, source, ...)
    mount_dir: str  # temporary mount points
    spool_dir: str  # compare output before it is ingested

    async def apply(self, ns: str, desc: Descriptor, mounts: Sequence[Mount]) -> Descriptor:
        """Extract the layer ``desc`` onto ``mounts``; the uncompressed layer's descriptor."""
        layer_compression(desc.media_type)  # unknown media type: NotImplemented_ before any I/O
        reader = await self.content.reader(ns, desc.digest)
        try:
            result = await trio.to_thread.run_sync(
                apply_to_mounts, _Sequential(reader), desc.media_type, list(mounts), self.mount_dir)
        finally:
            reader.close()
        return Descriptor(media_type=result.media_type, digest=result.digest, size=result.size)

    async def compare(self, ns: str, lower: Sequence[Mount], upper: Sequence[Mount], *,
                      media_type: str = MEDIA_TYPE_TAR_GZIP, ref: str | None = None,
                      labels: dict[str, str] | None = None, lease: str | None = None,
                      source_date_epoch: int | None = None) -> Descriptor:
        """The layer from ``lower`` to ``upper``, written into the content store."""
        media_type = media_type or MEDIA_TYPE_TAR_GZIP
        compression = compression_for(media_type)
        validate_labels(labels)
        with tempfile.TemporaryFile(dir=self.spool_dir) as spool:
            result = await trio.to_thread.run_sync(
                lambda: compare_mounts(list(lower), list(upper), spool, compression=compression,
                                       mount_dir=self.mount_dir, source_date_epoch=source_date_epoch))
            spool.seek(0)
            digest, size = await self.content.ingest(
                ns, ref or unique_ref(), spool, size=result.size, expected=result.digest,
                labels={**(labels or {}), LABEL_UNCOMPRESSED: result.diff_id}, lease=lease)
        return Descriptor(media_type=media_type, digest=digest, size=size)


def prepare_dirs(root: str, state: str) -> tuple[str, str]:
    """(mount_dir, spool_dir), emptied of what a crashed daemon left behind.

    Mount points are only ever removed with rmdir, so a mount that would not
    go away can never have its contents deleted.
    """
    mount_dir = os.path.join(state, "mounts")
    spool_dir = os.path.join(root, "spool")
    for path in (mount_dir, spool_dir):
        os.makedirs(path, mode=0o700, exist_ok=True)
    unmount_all(mount_dir, MNT_DETACH)
    for entry in os.listdir(mount_dir):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(mount_dir, entry))
    for entry in os.listdir(spool_dir):
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(spool_dir, entry))
    return mount_dir, spool_dir
