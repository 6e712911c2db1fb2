"""``NamespacedImages``: image records in meta.db, per namespace (reference §5, §12).

Each mutation is one short write transaction that does not await, so it is
atomic on the event loop; events are published after it committed.  Image
records are GC roots: delete marks the database dirty so the collector runs,
and ``sync`` waits for that run.  An image joins the request's lease only when
it carries ``containerd.io/gc.expire`` (as containerd does).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio

from actors.metadata import leases
from actors.metadata.db import MetadataDB, dump_labels, load_labels, now_ns
from oci.descriptor import Descriptor
from oci.identity import LABEL_GC_EXPIRE
from wire import errdefs, filters
from wire.events import (
    TOPIC_IMAGE_CREATE, TOPIC_IMAGE_DELETE, TOPIC_IMAGE_UPDATE, ImageCreate, ImageDelete, ImageUpdate,
)

from .records import Image, apply_update, filter_view, validate


def _row_to_image(row) -> Image:
    return Image(
        name=row["name"],
        target=Descriptor.from_json(json.loads(row["target"]), f"image {row['name']!r} target"),
        labels=load_labels(row["labels"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _dump_target(target: Descriptor) -> str:
    return json.dumps(target.to_json(), sort_keys=True, separators=(",", ":"))


@attrs.define(eq=False)
class NamespacedImages:
    """The image store every service and the transfer code use."""

    db: MetadataDB
    events: Any  # publish(namespace, topic, event)
    gc: Any = None  # the GarbageCollector, once its plugin is up (for sync deletes)
    sync_timeout: float = 60.0

    async def get(self, ns: str, name: str) -> Image:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM images WHERE namespace = ? AND name = ?", (ns, name)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"image {name!r}: not found")
        return _row_to_image(row)

    async def list(self, ns: str, filter_strings: list[str] | tuple[str, ...] = ()) -> list[Image]:
        flt = filters.parse_any(list(filter_strings))
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM images WHERE namespace = ? ORDER BY name", (ns,)).fetchall()
        images = [_row_to_image(r) for r in rows]
        return [i for i in images if flt.match(filters.MappingAdaptor(filter_view(i)))]

    async def create(self, ns: str, image: Image, *, lease: str | None = None) -> Image:
        validate(image)
        now = now_ns()
        image = attrs.evolve(image, created_at=now, updated_at=now,
                             labels={k: v for k, v in image.labels.items() if v})
        with self.db.write() as tx:
            tx.ensure_namespace(ns)
            row = tx.execute("SELECT 1 FROM images WHERE namespace = ? AND name = ?", (ns, image.name)).fetchone()
            if row is not None:
                raise errdefs.AlreadyExists(f"image {image.name!r}: already exists")
            tx.execute(
                "INSERT INTO images (namespace, name, target, labels, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (ns, image.name, _dump_target(image.target), dump_labels(image.labels), now, now))
            self._join_lease(tx, ns, lease, image)
        self.events.publish(ns, TOPIC_IMAGE_CREATE, ImageCreate(name=image.name, labels=dict(image.labels)))
        return image

    async def update(self, ns: str, image: Image, fieldpaths: list[str] | None = None, *,
                     lease: str | None = None) -> Image:
        if not image.name:
            raise errdefs.InvalidArgument("image name must not be empty")
        with self.db.write() as tx:
            tx.ensure_namespace(ns)
            row = tx.execute("SELECT * FROM images WHERE namespace = ? AND name = ?", (ns, image.name)).fetchone()
            if row is None:
                raise errdefs.NotFound(f"image {image.name!r}: not found")
            updated = apply_update(_row_to_image(row), image, fieldpaths)
            validate(updated)
            updated = attrs.evolve(updated, updated_at=now_ns())
            tx.execute("UPDATE images SET target = ?, labels = ?, updated_at = ? WHERE namespace = ? AND name = ?",
                       (_dump_target(updated.target), dump_labels(updated.labels), updated.updated_at,
                        ns, updated.name))
            self._join_lease(tx, ns, lease, updated)
        self.events.publish(ns, TOPIC_IMAGE_UPDATE, ImageUpdate(name=updated.name, labels=dict(updated.labels)))
        return updated

    async def delete(self, ns: str, name: str, *, target: Descriptor | None = None, sync: bool = False) -> None:
        with self.db.write() as tx:
            row = tx.execute("SELECT target FROM images WHERE namespace = ? AND name = ?", (ns, name)).fetchone()
            if row is None:
                raise errdefs.NotFound(f"image {name!r}: not found")
            if target is not None:
                stored = json.loads(row["target"]).get("digest")
                if stored != target.digest:
                    raise errdefs.NotFound(f"image {name!r} has target {stored}, not {target.digest}")
            tx.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (ns, name))
            leases.remove_from_leases(tx, ns, leases.IMAGES, name)
            tx.mark_deleted()
        self.events.publish(ns, TOPIC_IMAGE_DELETE, ImageDelete(name=name))
        if sync and self.gc is not None:
            with trio.move_on_after(self.sync_timeout) as scope:
                await self.gc.schedule_and_wait()
            if scope.cancelled_caught:
                raise errdefs.DeadlineExceeded(
                    f"image {name!r}: deleted, but garbage collection did not finish within {self.sync_timeout:g}s")

    @staticmethod
    def _join_lease(tx, ns: str, lease: str | None, image: Image) -> None:
        if lease and LABEL_GC_EXPIRE in image.labels:
            leases.add_to_lease(tx, ns, lease, leases.IMAGES, image.name)
