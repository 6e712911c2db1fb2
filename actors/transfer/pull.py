"""Pull an image from a registry into a namespace (reference §14 "Pull").

    resolve → walk the manifest tree (index → chosen manifests → config, layers)
            → fetch every blob into a content ingest (bounded concurrency,
              resumable ref ``layer-<digest>`` etc., digest verified at commit)
            → child GC labels on each parent, distribution-source label on each blob
            → unpack each layer as soon as it and its parent are there
            → create or update the image record.

Everything is written under the caller's lease (the service makes a temporary
one otherwise), so a pull killed half-way leaves ingests that the next pull
resumes from their offset with a Range request, and nothing GC would keep
forever.  A blob another pull is already fetching is fetched once (see
``inflight``).  Progress goes to a ``Progress`` (``progress.py``).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from actors.images.blobs import read_blob
from actors.images.records import Image
from actors.images.unpack import Unpacker
from oci import mediatypes, platforms
from oci.descriptor import Descriptor
from oci.identity import chain_ids, child_gc_labels, distribution_source_label, gc_snapshot_label
from oci.manifest import children, parse_config, parse_manifest
from oci.reference import Reference, parse
from wire import errdefs

from . import progress as words
from .access import RegistryAccess
from .inflight import Download, InFlight
from .progress import Progress
from .tasks import open_nursery
from .registry import Fetcher, Resolver, Timeouts

WRITE_BATCH = 1 << 20  # bytes gathered from the network per hop to the writer thread
WRITE_QUEUE = 4  # batches read ahead of the disk (bounded: a slow disk slows the download)
MAX_DEPTH = 8  # nested indexes
SHARED_ATTEMPTS = 3  # a shared blob GC removes under us is fetched again, this many times at most


def ingest_ref(desc: Descriptor) -> str:
    """containerd's client ref for fetching ``desc``: ``<kind>-<digest>``."""
    media_type = desc.media_type
    if mediatypes.is_index(media_type):
        kind = "index"
    elif mediatypes.is_manifest(media_type):
        kind = "manifest"
    elif mediatypes.is_config(media_type):
        kind = "config"
    elif mediatypes.is_layer(media_type):
        kind = "layer"
    else:
        kind = "unknown"
    return f"{kind}-{desc.digest}"


@attrs.frozen(kw_only=True)
class PullOptions:
    platforms: tuple[str, ...] = ()  # none and not all_platforms: the host's
    all_platforms: bool = False
    unpack: bool = True
    snapshotter: str = "overlayfs"
    create_image: bool = True
    max_concurrent_downloads: int = 3


@attrs.frozen(kw_only=True)
class PullResult:
    name: str
    target: Descriptor
    unpacked: str = ""  # top chain ID, "" when not unpacked
    blobs: int = 0  # blobs the image needs (for the chosen platforms)
    downloaded: int = 0  # bytes fetched from the registry by this pull


def fetch_matcher(options: PullOptions) -> tuple[platforms.Matcher | None, int]:
    """(matcher, limit): None = every platform; limit 1 keeps only the best manifest per index."""
    if options.all_platforms:
        return None, 0
    if not options.platforms:
        return platforms.host_matcher(), 1
    parsed = [platforms.parse(p) for p in options.platforms]
    if len(parsed) == 1:
        return platforms.only(parsed[0]), 1
    return platforms.any_of(parsed), 0


@attrs.define(eq=False)
class Puller:
    """What pulls share in one daemon: the stores, the Differ, the in-flight table."""

    metadata: Any
    differ: Any = None
    inflight: InFlight = attrs.Factory(InFlight)
    timeouts: Timeouts = attrs.Factory(Timeouts)
    keep_timeout: float = 30.0  # bound on re-registering a partial download after a failure

    async def pull(self, ns: str, reference: str, options: PullOptions, access: RegistryAccess, *,
                   lease: str | None, progress: Progress) -> PullResult:
        if self.metadata.content_store is None:
            raise errdefs.FailedPrecondition("pull: no content store is loaded")
        if options.unpack:
            if self.differ is None:
                raise errdefs.FailedPrecondition("pull: cannot unpack: no differ plugin is loaded")
            if options.snapshotter not in self.metadata.snapshot_stores:
                raise errdefs.NotFound(f"pull: snapshotter {options.snapshotter!r}: not found")
        if options.max_concurrent_downloads < 1:
            raise errdefs.InvalidArgument("pull: max_concurrent_downloads must be at least 1")
        ref = parse(reference)
        async with access.client(self.timeouts) as client:
            progress.step(words.RESOLVING, str(ref))
            name, root = await Resolver(client).resolve(ref)
            if mediatypes.is_schema1(root.media_type):
                raise errdefs.InvalidArgument(f"pull {name}: Docker schema 1 manifests are not supported")
            progress.step(words.RESOLVED, name, root.size, root.size)
            job = _PullJob(puller=self, ns=ns, ref=parse(name), fetcher=Fetcher.for_reference(client, name),
                           options=options, lease=lease, progress=progress)
            await job.run(root)
        if options.create_image:
            await self._store_image(ns, Image(name=name, target=root), lease)
            progress.step(words.SAVED, name)
        progress.step(words.DONE, name, job.downloaded, job.downloaded)
        return PullResult(name=name, target=root, unpacked=job.unpacked, blobs=len(job.visited),
                          downloaded=job.downloaded)

    async def _store_image(self, ns: str, image: Image, lease: str | None) -> Image:
        store = self.metadata.image_store
        try:
            return await store.update(ns, image, ["target"], lease=lease)
        except errdefs.NotFound:
            pass
        try:
            return await store.create(ns, image, lease=lease)
        except errdefs.AlreadyExists:  # created meanwhile: point it at what we pulled
            return await store.update(ns, image, ["target"], lease=lease)


@attrs.define(eq=False)
class _PullJob:
    """One walk of one image's tree."""

    puller: Puller
    ns: str
    ref: Reference
    fetcher: Fetcher
    options: PullOptions
    lease: str | None
    progress: Progress
    ready: dict[str, trio.Event] = attrs.Factory(dict)  # digest → set once committed here
    visited: set[str] = attrs.Factory(set)
    unpack_target: str | None = None  # digest of the manifest to unpack
    unpacked: str = ""
    downloaded: int = 0
    _limiter: trio.CapacityLimiter | None = None
    _matcher: platforms.Matcher | None = None
    _limit: int = 0

    @property
    def content(self) -> Any:
        return self.puller.metadata.content_store

    @property
    def source_key(self) -> str:
        return distribution_source_label(self.ref.domain)

    def _ready(self, digest: str) -> trio.Event:
        return self.ready.setdefault(digest, trio.Event())

    async def run(self, root: Descriptor) -> None:
        self._limiter = trio.CapacityLimiter(self.options.max_concurrent_downloads)
        self._matcher, self._limit = fetch_matcher(self.options)
        if self.options.unpack and mediatypes.is_manifest(root.media_type):
            self.unpack_target = root.digest
        async with open_nursery() as nursery:
            nursery.start_soon(self._visit, root, nursery, 0)

    # -- the tree ------------------------------------------------------------

    async def _visit(self, desc: Descriptor, nursery: trio.Nursery, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise errdefs.InvalidArgument(f"pull {self.ref}: indexes nested more than {MAX_DEPTH} deep")
        if mediatypes.is_schema1(desc.media_type):
            raise errdefs.InvalidArgument(f"pull {self.ref}: {desc.digest}: Docker schema 1 manifests "
                                          "are not supported")
        if desc.digest in self.visited:
            return  # reached twice (a manifest listed in two indexes)
        self.visited.add(desc.digest)
        await self._fetch(desc)
        is_index = mediatypes.is_index(desc.media_type)
        if not is_index and not mediatypes.is_manifest(desc.media_type):
            return
        data = await read_blob(self.content, self.ns, desc)
        kids = children(desc, data)
        if is_index:
            kids = self._select(desc, kids)
            self._choose_unpack(kids)
        elif desc.digest == self.unpack_target:
            nursery.start_soon(self._unpack, desc, data)
        labels = child_gc_labels(desc, kids)
        if labels:
            await self.content.update(self.ns, desc.digest, labels, [f"labels.{k}" for k in labels])
        for kid in kids:
            nursery.start_soon(self._visit, kid, nursery, depth + 1)

    def _select(self, index: Descriptor, kids: list[Descriptor]) -> list[Descriptor]:
        """The index entries this pull wants: matching platforms (best only when limited)."""
        if self._matcher is None:
            return kids
        matcher = self._matcher
        with_platform = [k for k in kids if k.platform is not None and matcher.match(k.platform)]
        without = [k for k in kids if k.platform is None]
        if self._limit:
            with_platform.sort(key=lambda k: matcher.rank(k.platform))
            kept = (with_platform + without)[:self._limit]
        else:
            kept = with_platform + without
        if kids and not kept:
            available = ", ".join(dict.fromkeys(
                platforms.format(platforms.normalize(k.platform)) for k in kids if k.platform is not None))
            raise errdefs.NotFound(f"pull {self.ref}: index {index.digest}: no manifest for platform "
                                   f"{matcher.describe()}: available: {available or 'none'}")
        kept_ids = {id(k) for k in kept}
        return [k for k in kids if id(k) in kept_ids]

    def _choose_unpack(self, kids: list[Descriptor]) -> None:
        """Unpack the host's manifest (or the one chosen, for a single requested platform)."""
        if not self.options.unpack or self.unpack_target is not None:
            return
        matcher = self._matcher if self._matcher is not None and self._limit else platforms.host_matcher()
        manifests = [k for k in kids if mediatypes.is_manifest(k.media_type)
                     and (k.platform is None or matcher.match(k.platform))]
        manifests.sort(key=lambda k: (1, 0) if k.platform is None else (0, matcher.rank(k.platform)))
        if manifests:
            self.unpack_target = manifests[0].digest

    # -- blobs ---------------------------------------------------------------

    async def _fetch(self, desc: Descriptor) -> None:
        name = ingest_ref(desc)
        inflight = self.puller.inflight
        while (current := inflight.current(desc.digest)) is not None:
            await self._follow(current, name)
        with inflight.lead(desc.digest, desc.size) as download:
            if self._limiter.available_tokens == 0:
                self.progress.step(words.WAITING, name, 0, desc.size)
            async with self._limiter:
                await self._download(desc, name, download)
        self._ready(desc.digest).set()

    async def _follow(self, current: Download, name: str) -> None:
        """Wait for another pull's download of the same blob, reporting its bytes as ours."""
        self.puller.inflight.shared += 1
        current.waiters += 1
        try:
            self.progress.step(words.WAITING, name, current.received, current.total)
            while not current.finished.is_set():
                with trio.move_on_after(words.BYTE_INTERVAL):
                    await current.finished.wait()
                self.progress.bytes(words.DOWNLOADING, name, current.received, current.total)
        finally:
            current.waiters -= 1

    async def _download(self, desc: Descriptor, name: str, download: Download) -> None:
        for attempt in range(SHARED_ATTEMPTS):
            try:
                return await self._download_once(desc, name, download)
            except errdefs.NotFound as exc:
                # GC took the stored bytes this writer meant to share: download them after all
                if "removed from the store while ingesting" not in exc.message or attempt + 1 == SHARED_ATTEMPTS:
                    raise

    async def _download_once(self, desc: Descriptor, name: str, download: Download) -> None:
        labels = {self.source_key: self.ref.path}
        try:
            writer = await self.content.writer(self.ns, name, total=desc.size, expected=desc.digest,
                                               lease=self.lease)
        except errdefs.AlreadyExists:
            await self._add_source(desc)
            self.progress.step(words.EXISTS, name, desc.size, desc.size)
            return
        resumable = False
        try:
            offset = 0 if writer.shared else writer.offset
            resumable = not writer.shared
            if not writer.shared:
                if offset > desc.size:
                    await writer.truncate(0)
                    offset = 0
                self.progress.step(words.DOWNLOADING, name, offset, desc.size)
                if offset < desc.size:
                    try:
                        await self._stream(desc, name, writer, offset, download)
                    except errdefs.DataLoss:
                        resumable = False
                        await self._drop(writer, name)
                        raise
            try:
                await writer.commit(desc.size, desc.digest, labels=labels)
            except errdefs.AlreadyExists:
                await self._add_source(desc)
            except errdefs.FailedPrecondition as exc:
                resumable = False
                await self._drop(writer, name)
                raise errdefs.DataLoss(f"pull {self.ref}: {name} from {self.ref.domain} failed "
                                       f"verification ({exc.message}); nothing was committed") from None
            resumable = False
        finally:
            with trio.CancelScope(shield=True):
                partial = 0
                if resumable:
                    try:
                        partial = writer.offset
                    except errdefs.DockyardError:
                        pass
                await writer.close()
                if partial:
                    await self._keep_for_resume(desc, name)
                elif resumable:  # stopped before its first byte: nothing worth resuming
                    await self._forget(name)
        if writer.shared:
            self.progress.step(words.EXISTS, name, desc.size, desc.size)
        else:
            self.downloaded += desc.size - offset
            self.progress.step(words.COMPLETE, name, desc.size, desc.size)

    async def _stream(self, desc: Descriptor, name: str, writer: Any, offset: int, download: Download) -> None:
        """Network reads and disk writes overlap: batches go to a writer task through a short queue."""
        download.received = offset
        send, receive = trio.open_memory_channel(WRITE_QUEUE)

        async def write_batches() -> None:
            async with receive:
                async for data in receive:
                    await writer.write(data)
                    download.received += len(data)
                    self.progress.bytes(words.DOWNLOADING, name, download.received, desc.size)

        async with open_nursery() as nursery:
            nursery.start_soon(write_batches)
            async with send:
                await self._read_batches(desc, name, offset, send)
        if download.received != desc.size:
            raise errdefs.Unavailable(f"pull {self.ref}: {name}: registry {self.ref.domain} ended the download "
                                      f"at {download.received} of {desc.size} bytes; pull again to resume")

    async def _read_batches(self, desc: Descriptor, name: str, offset: int, send: trio.MemorySendChannel) -> None:
        read = offset
        batch: list[bytes] = []
        pending = 0
        async with self.fetcher.fetch(desc, offset) as stream:
            async for chunk in stream:
                read += len(chunk)
                if read > desc.size:
                    raise errdefs.DataLoss(f"pull {self.ref}: {name}: registry {self.ref.domain} sent more "
                                           f"than the {desc.size} bytes the descriptor says; nothing was committed")
                batch.append(chunk)
                pending += len(chunk)
                if pending >= WRITE_BATCH:
                    await send.send(b"".join(batch))
                    batch, pending = [], 0
            if batch:
                await send.send(b"".join(batch))

    async def _keep_for_resume(self, desc: Descriptor, name: str) -> None:
        """A download that stopped half-way outlives this pull's temporary lease.

        Reopening the ingest with no lease gives it its own 24 h expiry (an
        unexpired ingest is a GC root), so the next pull resumes it even though
        the lease that held it is deleted when this pull fails.
        """
        if self.lease is None:
            return
        with trio.move_on_after(self.puller.keep_timeout):
            try:
                writer = await self.content.writer(self.ns, name, total=desc.size, expected=desc.digest)
            except errdefs.DockyardError:
                return  # committed meanwhile, or busy: nothing to keep
            await writer.close()

    async def _drop(self, writer: Any, name: str) -> None:
        """Forget a download that failed verification, so the next pull starts clean."""
        with trio.CancelScope(shield=True):
            await writer.close()
            await self._forget(name)

    async def _forget(self, name: str) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(self.puller.keep_timeout):
            try:
                await self.content.abort(self.ns, name, lease=self.lease)
            except (errdefs.NotFound, errdefs.Unavailable):
                pass  # gone already, or another writer took it over

    async def _add_source(self, desc: Descriptor) -> None:
        """Add this repository to the blob's distribution-source label (comma-joined)."""
        key = self.source_key
        try:
            info = await self.content.info(self.ns, desc.digest)
        except errdefs.NotFound:
            return
        repos = [r for r in info.labels.get(key, "").split(",") if r]
        if self.ref.path in repos:
            return
        repos.append(self.ref.path)
        await self.content.update(self.ns, desc.digest, {key: ",".join(repos)}, [f"labels.{key}"])

    # -- unpack --------------------------------------------------------------

    async def _unpack(self, manifest_desc: Descriptor, data: bytes) -> None:
        """Apply each layer once it and the layers below it are committed."""
        manifest = parse_manifest(data, f"manifest {manifest_desc.digest}")
        await self._ready(manifest.config.digest).wait()
        config = parse_config(await read_blob(self.content, self.ns, manifest.config),
                              f"image config {manifest.config.digest}")
        if len(manifest.layers) != len(config.diff_ids):
            raise errdefs.InvalidArgument(
                f"pull {self.ref}: manifest {manifest_desc.digest}: {len(manifest.layers)} layers but "
                f"{len(config.diff_ids)} diff ids in config {manifest.config.digest}")
        unpacker = Unpacker(metadata=self.puller.metadata, differ=self.puller.differ,
                            snapshotter_name=self.options.snapshotter)
        chain = chain_ids(config.diff_ids)
        for i, layer in enumerate(manifest.layers):
            await self._ready(layer.digest).wait()
            name = ingest_ref(layer)
            self.progress.step(words.EXTRACTING, name, 0, layer.size)
            await unpacker.unpack_layer(self.ns, layer, config.diff_ids[i],
                                        parent_chain=chain[i - 1] if i else "", chain_id=chain[i],
                                        lease=self.lease)
            self.progress.step(words.EXTRACTED, name, layer.size, layer.size)
        if chain:
            key = gc_snapshot_label(self.options.snapshotter)
            await self.content.update(self.ns, manifest.config.digest, {key: chain[-1]}, [f"labels.{key}"])
            self.unpacked = chain[-1]
