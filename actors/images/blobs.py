"""Reading small blobs (manifests, indexes, configs) from the namespaced content store.

``read_blob`` is async (the read itself runs in a worker thread);
``thread_reader`` gives the synchronous ``read_blob(desc)`` the pure helpers of
``oci.imagecheck`` expect, for use from a worker thread started by Trio.
"""

from __future__ import annotations

import inspect
from typing import Any

import trio

from oci.descriptor import Descriptor
from wire import errdefs

MAX_DOCUMENT = 4 << 20  # registries refuse larger manifests; so do we


async def close_reader(reader: Any) -> None:
    result = reader.close()
    if inspect.isawaitable(result):
        await result


async def read_blob(content_store: Any, ns: str, desc: Descriptor, *, limit: int = MAX_DOCUMENT) -> bytes:
    """The whole blob ``desc`` names; NotFound names it; larger than ``limit`` is InvalidArgument."""
    try:
        reader = await content_store.reader(ns, desc.digest)
    except errdefs.NotFound:
        raise errdefs.NotFound(f"content {desc.digest} ({desc.media_type or 'blob'}): not found") from None
    try:
        if reader.size > limit:
            raise errdefs.InvalidArgument(f"content {desc.digest}: {reader.size} bytes is too large for a document")
        return await trio.to_thread.run_sync(reader.read_at, 0, reader.size)
    finally:
        with trio.CancelScope(shield=True):
            await close_reader(reader)


def thread_reader(content_store: Any, ns: str):
    """A sync ``read_blob(desc)`` for code running in a Trio worker thread (caches documents)."""
    cache: dict[str, bytes] = {}

    def read(desc: Descriptor) -> bytes:
        data = cache.get(desc.digest)
        if data is None:
            data = trio.from_thread.run(read_blob, content_store, ns, desc)
            cache[desc.digest] = data
        return data

    return read


class BlobFile:
    """A sequential, synchronous file object over a content ``ReaderAt`` (for tar writers)."""

    CHUNK = 1 << 20

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._offset = 0

    def read(self, n: int = -1) -> bytes:
        remaining = self._reader.size - self._offset
        if remaining <= 0:
            return b""
        n = remaining if n is None or n < 0 else min(n, remaining)
        data = self._reader.read_at(self._offset, n)
        self._offset += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
