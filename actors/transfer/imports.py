"""Import an image archive (OCI layout or ``docker save`` tar) into a namespace.

The archive arrives as a stream of byte chunks.  ``oci.archive.read_archive``
reads it in one pass in a worker thread; each blob goes straight into the
content store (``content_store.ingest``, nothing whole in memory) under the
transfer's lease.  Afterwards the child GC labels go on the parent blobs, the
image records are created (or their target updated), and, if asked, the chosen
platform's manifest of each image is unpacked.  Progress is published as
``/transfer/progress`` events.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, AsyncIterator

import attrs
import trio

from actors.images.records import Image
from actors.images.unpack import Unpacker
from oci import archive, platforms
from oci._digest import is_digest
from oci.imagecheck import manifest_for
from wire import errdefs
from wire.events import TOPIC_TRANSFER_PROGRESS, TransferProgress

from actors.images.blobs import thread_reader
from .pipes import CHUNK, ChannelReader


@attrs.frozen(kw_only=True)
class ImportOptions:
    """``ctr images import``'s choices."""

    base_name: str | None = None
    index_name: str = ""
    digests: bool = False
    skip_digest_for_named: bool = False
    all_platforms: bool = False
    platforms: tuple[str, ...] = ()
    unpack: bool = True
    snapshotter: str = "overlayfs"


@attrs.frozen(kw_only=True)
class ImportResult:
    images: tuple[Image, ...]
    unpacked: dict[str, str]  # image name -> top chain ID
    bytes_read: int


def matcher_for(all_platforms: bool, specs: tuple[str, ...] | list[str]) -> platforms.Matcher:
    if all_platforms:
        return platforms.all_platforms()
    if specs:
        parsed = [platforms.parse(s) for s in specs]
        return platforms.only(parsed[0]) if len(parsed) == 1 else platforms.any_of(parsed)
    return platforms.host_matcher()


@attrs.define(eq=False)
class Importer:
    """One import: the stores it writes and the Differ unpack uses."""

    metadata: Any
    differ: Any = None
    layer_timeout: float = 600.0
    cleanup_timeout: float = 10.0

    def _publish(self, ns: str, event: TransferProgress) -> None:
        self.metadata.events.publish(ns, TOPIC_TRANSFER_PROGRESS, event)

    async def run(self, ns: str, chunks: AsyncIterator[bytes], options: ImportOptions, *,
                  lease: str) -> ImportResult:
        content = self.metadata.content_store
        if content is None:
            raise errdefs.FailedPrecondition("import: no content store is loaded")
        matcher = matcher_for(options.all_platforms, options.platforms)
        token = os.urandom(4).hex()
        counter = itertools.count()

        async def next_chunk() -> bytes | None:
            try:
                return await chunks.__anext__()
            except StopAsyncIteration:
                return None

        async def ingest(key: str, size: int, fileobj) -> None:
            expected = key if is_digest(key) else None
            ref = f"import-{token}-{next(counter)}"
            digest, _ = await content.ingest(ns, ref, fileobj, size=size, expected=expected, lease=lease)
            self._publish(ns, TransferProgress(event="complete", name=digest, progress=size, total=size))

        def on_blob(key: str, size: int, fileobj) -> None:
            trio.from_thread.run(ingest, key, size, fileobj)

        reader = ChannelReader(next_chunk)

        def read() -> archive.ArchiveIndex:
            found = archive.read_archive(
                reader, on_blob, base_name=options.base_name, index_name=options.index_name,
                digests=options.digests, skip_digest_for_named=options.skip_digest_for_named,
                all_platforms=options.all_platforms, platform=None if options.all_platforms else matcher)
            while reader.read(CHUNK):  # drain the tar's trailing padding so the client's stream ends cleanly
                pass
            return found

        found = await trio.to_thread.run_sync(read)
        if found.missing:
            raise errdefs.NotFound("import: the archive lacks blobs its images need: " + ", ".join(found.missing))
        for parent, labels in found.gc_labels.items():
            await content.update(ns, parent, labels, [f"labels.{k}" for k in labels])

        images = []
        for entry in found.images:
            images.append(await self._store_image(ns, Image(name=entry.name, target=entry.target), lease))
            self._publish(ns, TransferProgress(event="saved", name=entry.name))

        unpacked: dict[str, str] = {}
        if options.unpack and images:
            unpacked = {name: fs.chain_id
                        for name, fs in (await self.unpack_images(ns, images, options, matcher, lease)).items()}
        self._publish(ns, TransferProgress(event="Completed import", progress=reader.received,
                                           total=reader.received))
        return ImportResult(images=tuple(images), unpacked=unpacked, bytes_read=reader.received)

    async def _store_image(self, ns: str, image: Image, lease: str) -> Image:
        store = self.metadata.image_store
        try:
            return await store.update(ns, image, ["target"], lease=lease)
        except errdefs.NotFound:
            pass
        try:
            return await store.create(ns, image, lease=lease)
        except errdefs.AlreadyExists:  # created meanwhile by someone else: point it at ours
            return await store.update(ns, image, ["target"], lease=lease)

    async def unpack_images(self, ns: str, images: list[Image], options: ImportOptions,
                      matcher: platforms.Matcher, lease: str) -> dict[str, RootFS]:
        """Unpack each image's manifest for ``matcher``: image name → what was unpacked."""
        if self.differ is None:
            raise errdefs.FailedPrecondition("import: cannot unpack: no differ plugin is loaded")
        unpacker = Unpacker(metadata=self.metadata, differ=self.differ, snapshotter_name=options.snapshotter,
                            layer_timeout=self.layer_timeout, cleanup_timeout=self.cleanup_timeout)
        unpack_matcher = platforms.host_matcher() if options.all_platforms else matcher
        read = thread_reader(self.metadata.content_store, ns)
        done: dict[str, RootFS] = {}
        unpacked: dict[str, RootFS] = {}
        for image in images:
            try:
                manifest = await trio.to_thread.run_sync(manifest_for, image.target, unpack_matcher, read)
            except errdefs.NotFound:
                if options.all_platforms:
                    continue  # nothing for this host: keep the content, skip the unpack
                raise
            if manifest.digest not in done:
                async def progress(layer, result, name=image.name):
                    word = "extracted" if result.applied else "already exists"
                    self._publish(ns, TransferProgress(event=word, name=layer.digest, progress=layer.size,
                                                       total=layer.size))
                done[manifest.digest] = await unpacker.unpack(ns, manifest, lease=lease, progress=progress)
            unpacked[image.name] = done[manifest.digest]
        return unpacked
