"""Unpack an image's layers into snapshots named by chain ID (reference §5 "Unpack").

Per layer, bottom up: lock (snapshotter, chainID); prepare
``extract-<unique> <chainID>`` on the parent chain with the snapshot labels
(``containerd.io/snapshot.ref`` makes an already-unpacked layer answer
AlreadyExists, and it is skipped); apply the blob through the Differ (off the
event loop); check the diffID; commit as the chain ID (AlreadyExists: someone
else won, drop ours); label the blob ``containerd.io/uncompressed``.  At the end
the config blob gets ``containerd.io/gc.ref.snapshot.<snapshotter>`` → top
chain ID so GC keeps the snapshots as long as the image.

Everything is created under the caller's lease, so an unpack interrupted by a
crash leaves ``extract-*`` actives that GC collects when the lease expires, and
simply running it again finishes the job.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import attrs
import trio

from actors.timeouts import register
from oci import mediatypes
from oci.descriptor import Descriptor
from oci.identity import (
    LABEL_SNAPSHOT_DIFF_ID, LABEL_SNAPSHOT_PARENT_CHAIN_ID, LABEL_SNAPSHOT_PREFIX, LABEL_SNAPSHOT_REF,
    LABEL_UNCOMPRESSED, chain_ids, gc_snapshot_label,
)
from oci.imagecheck import RootFS, rootfs
from wire import errdefs

from .blobs import thread_reader

UNPACK_LAYER = register("io.dockyard.timeout.images.unpack-layer", 600.0)
CLEANUP = register("io.dockyard.timeout.images.unpack-cleanup", 10.0)
PREPARE_ATTEMPTS = 3


def unique_part() -> str:
    """containerd's ``<nanoseconds>-<base64url(3 random bytes)>``."""
    return f"{time.time_ns() % 1_000_000_000}-{base64.urlsafe_b64encode(os.urandom(3)).decode()}"


class KeyedLocks:
    """One trio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], list] = {}  # key -> [lock, users]

    def hold(self, key: tuple[str, str]):
        locks = self._locks

        class _Hold:
            async def __aenter__(self_inner):
                entry = locks.setdefault(key, [trio.Lock(), 0])
                entry[1] += 1
                try:
                    await entry[0].acquire()
                except BaseException:
                    self._release_user(key)
                    raise

            async def __aexit__(self_inner, *exc):
                locks[key][0].release()
                self._release_user(key)

        return _Hold()

    def _release_user(self, key: tuple[str, str]) -> None:
        entry = self._locks[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self._locks[key]


_LAYER_LOCKS = KeyedLocks()  # one daemon per process: unpacks of the same layer never overlap


@attrs.frozen(kw_only=True)
class LayerResult:
    chain_id: str
    applied: bool  # False: already unpacked, skipped


@attrs.define(eq=False)
class Unpacker:
    """Unpacks manifests into one snapshotter, through the namespaced stores.

    ``metadata`` provides ``content_store`` and ``snapshot_stores``; ``differ``
    is the Differ plugin instance (``apply(ns, desc, mounts)``).
    """

    metadata: Any
    differ: Any
    snapshotter_name: str
    layer_timeout: float = 600.0
    cleanup_timeout: float = 10.0

    @property
    def content(self) -> Any:
        return self.metadata.content_store

    @property
    def snapshots(self) -> Any:
        stores = self.metadata.snapshot_stores
        if self.snapshotter_name not in stores:
            raise errdefs.NotFound(f"snapshotter {self.snapshotter_name!r}: not found")
        return stores[self.snapshotter_name]

    async def unpack(self, ns: str, manifest_desc: Descriptor, *, lease: str | None,
                     progress=None) -> RootFS:
        """Unpack every layer of ``manifest_desc``; returns what was unpacked (``chain_id`` is the top)."""
        read = thread_reader(self.content, ns)
        fs = await trio.to_thread.run_sync(rootfs, manifest_desc, read)
        chain = chain_ids(fs.diff_ids)
        for i, layer in enumerate(fs.layers):
            result = await self.unpack_layer(ns, layer, fs.diff_ids[i], parent_chain=chain[i - 1] if i else "",
                                             chain_id=chain[i], lease=lease)
            if progress is not None:
                await progress(layer, result)
        top = chain[-1] if chain else ""
        if top:
            key = gc_snapshot_label(self.snapshotter_name)
            config = await self.content.info(ns, fs.manifest.config.digest)
            if config.labels.get(key) != top:  # every `run` unpacks again: no write when nothing changes
                await self.content.update(ns, fs.manifest.config.digest, {key: top}, [f"labels.{key}"])
        return fs

    async def is_unpacked(self, ns: str, manifest_desc: Descriptor) -> bool:
        fs = await trio.to_thread.run_sync(rootfs, manifest_desc, thread_reader(self.content, ns))
        if not fs.chain_id:
            return True
        try:
            await self.snapshots.stat(ns, fs.chain_id)
        except errdefs.NotFound:
            return False
        return True

    async def unpack_layer(self, ns: str, layer: Descriptor, diff_id: str, *, parent_chain: str, chain_id: str,
                           lease: str | None) -> LayerResult:
        """Unpack one layer onto ``parent_chain`` (which must be unpacked already) as ``chain_id``."""
        async with _LAYER_LOCKS.hold((self.snapshotter_name, chain_id)):
            if await self._exists(ns, chain_id):
                await self._label_uncompressed(ns, layer, diff_id)
                return LayerResult(chain_id=chain_id, applied=False)
            labels = {k: v for k, v in layer.annotations.items() if k.startswith(LABEL_SNAPSHOT_PREFIX)}
            labels[LABEL_SNAPSHOT_REF] = chain_id
            labels[LABEL_SNAPSHOT_DIFF_ID] = diff_id
            if parent_chain:
                labels[LABEL_SNAPSHOT_PARENT_CHAIN_ID] = parent_chain
            prepared = await self._prepare(ns, chain_id, parent_chain, labels, lease)
            if prepared is None:
                await self._label_uncompressed(ns, layer, diff_id)
                return LayerResult(chain_id=chain_id, applied=False)
            key, mounts = prepared
            try:
                with trio.fail_after(self.layer_timeout):
                    try:
                        applied = await self.differ.apply(ns, layer, mounts)
                    except errdefs.NotFound as exc:
                        raise errdefs.NotFound(f"unpack of layer {layer.digest}: {exc.message}") from None
                if applied.digest != diff_id:
                    raise errdefs.FailedPrecondition(
                        f"layer {layer.digest}: unpacked diff id {applied.digest} does not match {diff_id}")
                try:
                    await self.snapshots.commit(ns, chain_id, key, labels=labels, lease=lease)
                except errdefs.AlreadyExists:
                    await self._remove_quietly(ns, key)
            except BaseException:
                await self._remove_quietly(ns, key)
                raise
            await self._label_uncompressed(ns, layer, diff_id)
            return LayerResult(chain_id=chain_id, applied=True)

    async def _exists(self, ns: str, chain_id: str) -> bool:
        try:
            await self.snapshots.stat(ns, chain_id)
        except errdefs.NotFound:
            return False
        return True

    async def _prepare(self, ns, chain_id, parent_chain, labels, lease) -> tuple[str, list] | None:
        """(key, mounts) of a fresh active snapshot, or None when the layer turned out unpacked."""
        last: Exception | None = None
        for _ in range(PREPARE_ATTEMPTS):
            key = f"extract-{unique_part()} {chain_id}"
            try:
                mounts = await self.snapshots.prepare(ns, key, parent=parent_chain, labels=labels, lease=lease)
                return key, mounts
            except errdefs.AlreadyExists as exc:
                if await self._exists(ns, chain_id):
                    return None
                last = exc  # a key collision: try another unique part
            except errdefs.NotFound as exc:
                raise errdefs.NotFound(
                    f"unpack of {chain_id}: parent snapshot {parent_chain!r} not found ({exc.message})") from None
        raise errdefs.Unavailable(f"unpack of {chain_id}: could not prepare a snapshot: {last}")

    async def _remove_quietly(self, ns: str, key: str) -> None:
        with trio.move_on_after(self.cleanup_timeout) as scope:
            scope.shield = True
            try:
                await self.snapshots.remove(ns, key)
            except errdefs.DockyardError:
                pass  # GC collects it once the lease ends

    async def _label_uncompressed(self, ns: str, layer: Descriptor, diff_id: str) -> None:
        try:
            compression = mediatypes.layer_compression(layer.media_type)
        except ValueError:
            return
        if compression == mediatypes.UNCOMPRESSED:
            return
        try:
            await self.content.update(ns, layer.digest, {LABEL_UNCOMPRESSED: diff_id},
                                      [f"labels.{LABEL_UNCOMPRESSED}"])
        except errdefs.NotFound:
            pass  # layer content not in this namespace (shared snapshot); nothing to label
