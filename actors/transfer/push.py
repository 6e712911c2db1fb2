"""Push an image of a namespace to a registry (distribution spec push flow).

The image's tree is walked in the content store (index → manifests for the
chosen platforms → config and layers).  Blobs go first, a few at a time: each
is skipped when the repository has it, mounted from another repository of the
same registry when its ``containerd.io/distribution.source.<host>`` label names
one, else uploaded (monolithic, or in PATCH chunks when ``chunk_size`` > 0).
Manifests follow, children before parents (nested ones by digest), the root
last under the reference's tag.  Pushed blobs get the target repository added
to their distribution-source label, so later pushes can mount from it.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from actors.images.blobs import close_reader, read_blob
from oci import mediatypes, platforms
from oci.descriptor import Descriptor
from oci.identity import distribution_source_label
from oci.manifest import children
from oci.reference import Reference, parse
from wire import errdefs

from . import progress as words
from .access import RegistryAccess
from .progress import Progress
from .pull import MAX_DEPTH, ingest_ref
from .tasks import open_nursery
from .registry import Pusher, PushResult, Timeouts

TICK = 0.25  # seconds between upload byte reports


@attrs.frozen(kw_only=True)
class PushOptions:
    platforms: tuple[str, ...] = ()  # none: every platform the image has
    chunk_size: int = 0  # > 0: chunked upload in pieces of this size
    max_concurrent_uploads: int = 3


@attrs.frozen(kw_only=True)
class PushSummary:
    name: str  # the remote reference
    target: Descriptor
    uploaded: int = 0  # blobs whose bytes were sent
    mounted: int = 0
    existing: int = 0
    bytes: int = 0


class CountingSource:
    """A content reader as a ``BlobSource`` that counts the bytes read (from worker threads)."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self.read = 0

    def read_at(self, offset: int, size: int) -> bytes:
        data = self._reader.read_at(offset, size)
        self.read += len(data)
        return data


@attrs.define(eq=False)
class ImagePusher:
    metadata: Any
    timeouts: Timeouts = attrs.Factory(Timeouts)

    async def push(self, ns: str, reference: str, local: str, options: PushOptions, access: RegistryAccess, *,
                   progress: Progress) -> PushSummary:
        if options.max_concurrent_uploads < 1:
            raise errdefs.InvalidArgument("push: max_concurrent_uploads must be at least 1")
        if options.chunk_size < 0:
            raise errdefs.InvalidArgument("push: chunk_size must not be negative")
        ref = parse(reference)
        image = await self._image(ns, local or reference)
        docs, leaves = await self._walk(ns, image.target, options)
        job = _PushJob(metadata=self.metadata, ns=ns, ref=ref, options=options, progress=progress)
        async with access.client(self.timeouts) as client:
            job.pusher = Pusher.for_reference(client, ref)
            limiter = trio.CapacityLimiter(options.max_concurrent_uploads)
            async with open_nursery() as nursery:
                for desc in leaves:
                    nursery.start_soon(job.push_blob, desc, limiter)
            for desc in reversed(docs):  # children before parents
                await job.push_manifest(desc, tag=ref.tag if desc is image.target else None)
        progress.step(words.DONE, str(ref), job.bytes, job.bytes)
        return PushSummary(name=str(ref), target=image.target, uploaded=job.counts[PushResult.UPLOADED],
                           mounted=job.counts[PushResult.MOUNTED], existing=job.counts[PushResult.EXISTS],
                           bytes=job.bytes)

    async def _image(self, ns: str, name: str) -> Any:
        store = self.metadata.image_store
        try:
            return await store.get(ns, name)
        except errdefs.NotFound:
            try:
                normalized = str(parse(name))
            except errdefs.InvalidArgument:
                normalized = name
            if normalized == name:
                raise errdefs.NotFound(f"push: image {name!r}: not found") from None
        try:
            return await store.get(ns, normalized)
        except errdefs.NotFound:
            raise errdefs.NotFound(f"push: image {name!r}: not found") from None

    async def _walk(self, ns: str, target: Descriptor,
                    options: PushOptions) -> tuple[list[Descriptor], list[Descriptor]]:
        """(manifests and indexes parent-first, other blobs), each once."""
        content = self.metadata.content_store
        matcher = platforms.any_of([platforms.parse(p) for p in options.platforms]) if options.platforms else None
        docs: list[Descriptor] = []
        leaves: list[Descriptor] = []
        seen: set[str] = set()

        async def visit(desc: Descriptor, depth: int) -> None:
            if desc.digest in seen:
                return
            if depth > MAX_DEPTH:
                raise errdefs.InvalidArgument(f"push: index {target.digest}: nested more than {MAX_DEPTH} deep")
            seen.add(desc.digest)
            if not (mediatypes.is_index(desc.media_type) or mediatypes.is_manifest(desc.media_type)):
                if not mediatypes.is_non_distributable(desc.media_type):
                    leaves.append(desc)
                return
            docs.append(desc)
            try:
                data = await read_blob(content, ns, desc)
            except errdefs.NotFound:
                raise errdefs.NotFound(f"push: {ingest_ref(desc)} of image {target.digest} is not stored here "
                                       "(pulled for other platforms only? push with --platform)") from None
            kids = children(desc, data)
            if mediatypes.is_index(desc.media_type) and matcher is not None:
                kids = [k for k in kids if k.platform is None or matcher.match(k.platform)]
            for kid in kids:
                await visit(kid, depth + 1)

        await visit(target, 0)
        return docs, leaves


@attrs.define(eq=False)
class _PushJob:
    metadata: Any
    ns: str
    ref: Reference
    options: PushOptions
    progress: Progress
    pusher: Pusher | None = None
    counts: dict[PushResult, int] = attrs.Factory(lambda: {r: 0 for r in PushResult})
    bytes: int = 0

    @property
    def content(self) -> Any:
        return self.metadata.content_store

    async def push_blob(self, desc: Descriptor, limiter: trio.CapacityLimiter) -> None:
        name = ingest_ref(desc)
        if limiter.available_tokens == 0:
            self.progress.step(words.WAITING, name, 0, desc.size)
        async with limiter:
            try:
                reader = await self.content.reader(self.ns, desc.digest)
            except errdefs.NotFound:
                raise errdefs.NotFound(f"push {self.ref}: {name}: content not found locally") from None
            try:
                info = await self.content.info(self.ns, desc.digest)
                mount_from = self._mount_source(info.labels)
                source = CountingSource(reader)
                self.progress.step(words.UPLOADING, name, 0, desc.size)
                async with open_nursery() as nursery:
                    nursery.start_soon(self._report, name, source, desc.size)
                    result = await self.pusher.push_blob(desc, source, mount_from=mount_from,
                                                         chunk_size=self.options.chunk_size)
                    nursery.cancel_scope.cancel()
            finally:
                with trio.CancelScope(shield=True):
                    await close_reader(reader)
        self.counts[result] += 1
        if result is PushResult.UPLOADED:
            self.bytes += desc.size
            self.progress.step(words.COMPLETE, name, desc.size, desc.size)
        else:
            self.progress.step(words.MOUNTED if result is PushResult.MOUNTED else words.EXISTS, name,
                               desc.size, desc.size)
        await self._add_source(desc)

    async def _report(self, name: str, source: CountingSource, total: int) -> None:
        while True:
            await trio.sleep(TICK)
            self.progress.bytes(words.UPLOADING, name, min(source.read, total), total)

    async def push_manifest(self, desc: Descriptor, *, tag: str | None) -> None:
        name = ingest_ref(desc)
        body = await read_blob(self.content, self.ns, desc)
        self.progress.step(words.UPLOADING, name, 0, desc.size)
        await self.pusher.push_manifest(desc, body, tag=tag or desc.digest)
        self.bytes += desc.size
        self.progress.step(words.COMPLETE, name, desc.size, desc.size)
        await self._add_source(desc)

    def _mount_source(self, labels: dict[str, str]) -> str | None:
        """Another repository of this registry the blob came from, if its label says so."""
        repos = labels.get(distribution_source_label(self.ref.domain), "")
        for repo in repos.split(","):
            if repo and repo != self.ref.path:
                return repo
        return None

    async def _add_source(self, desc: Descriptor) -> None:
        key = distribution_source_label(self.ref.domain)
        try:
            info = await self.content.info(self.ns, desc.digest)
        except errdefs.NotFound:
            return
        repos = [r for r in info.labels.get(key, "").split(",") if r]
        if self.ref.path not in repos:
            repos.append(self.ref.path)
            await self.content.update(self.ns, desc.digest, {key: ",".join(repos)}, [f"labels.{key}"])
