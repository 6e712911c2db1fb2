"""Export images of a namespace as an OCI image-layout tar, streamed in chunks.

A worker thread walks each image (index → matching manifests → config and
layers, ``oci.imagecheck.walk``) and writes every blob with
``oci.archive.ArchiveWriter`` into a ``ChannelWriter``; the event loop side
hands the chunks to the caller as they come (bounded channel: a slow reader
slows the writer, nothing whole in memory).  Blobs are read with pread through
the content store's readers.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import attrs
import trio

from actors.images.blobs import BlobFile, close_reader, thread_reader
from oci import archive
from oci.imagecheck import walk
from wire import errdefs

from .imports import matcher_for
from .pipes import pump_from_thread

CHANNEL_DEPTH = 4


@attrs.frozen(kw_only=True)
class ExportOptions:
    names: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()  # image targets to export without a name
    platforms: tuple[str, ...] = ()
    all_platforms: bool = False


async def export_archive(metadata: Any, ns: str, options: ExportOptions,
                         emit: Callable[[bytes], Awaitable[None]]) -> int:
    """Send the tar's bytes to ``emit`` chunk by chunk; returns the tar's size.

    Errors (NotFound naming the image or blob) end the stream.
    """
    if not options.names and not options.digests:
        raise errdefs.InvalidArgument("export: name at least one image")
    content = metadata.content_store
    store = metadata.image_store
    entries = []
    for name in options.names:
        entries.append((name, (await store.get(ns, name)).target))
    if options.digests:
        by_digest = {i.target.digest: i.target for i in await store.list(ns)}
        for digest in options.digests:
            if digest not in by_digest:
                raise errdefs.NotFound(f"export: no image with target {digest}")
            entries.append(("", by_digest[digest]))
    matcher = matcher_for(options.all_platforms, options.platforms)

    async def open_blob(digest: str):
        return await content.reader(ns, digest)

    def write_all(out) -> None:
        read = thread_reader(content, ns)
        with archive.ArchiveWriter(out) as writer:
            for name, target in entries:
                for desc in walk(target, matcher, read):
                    if writer.has_blob(desc.digest):
                        continue
                    try:
                        reader = trio.from_thread.run(open_blob, desc.digest)
                    except errdefs.NotFound:
                        raise errdefs.NotFound(
                            f"export of {name or target.digest}: content {desc.digest} "
                            f"({desc.media_type}): not found") from None
                    try:
                        writer.add_blob(desc, BlobFile(reader))
                    finally:
                        trio.from_thread.run(close_reader, reader)
                if name:
                    writer.add_image(name, target)
                else:
                    writer.add_manifest(target)

    return await pump_from_thread(write_all, emit, depth=CHANNEL_DEPTH)
