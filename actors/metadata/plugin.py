"""The metadata plugin: opens meta.db and hands it, with the event publisher, to services."""

from __future__ import annotations

import os
from typing import Any

import attrs

from actors.content.metadata import NamespacedContent
from actors.images.store import NamespacedImages
from actors.plugin import CONTENT, EVENT, METADATA, SNAPSHOTTER, InitContext, plugin
from actors.snapshots.metadata import open_snapshot_stores

from .db import MetadataDB


@attrs.define(eq=False)
class Metadata:
    """What services get from the metadata plugin."""

    db: MetadataDB
    events: Any  # EventsService: publish(namespace, topic, event)
    content: Any = None  # the backend content store, when a content plugin is loaded
    snapshotters: dict[str, Any] = attrs.Factory(dict)
    image_store: Any = None  # NamespacedImages (actors/images)
    content_store: Any = None  # NamespacedContent (actors/content), when a content plugin is loaded
    snapshot_stores: dict[str, Any] = attrs.Factory(dict)  # NamespacedSnapshotter per backend (actors/snapshots)

    async def aclose(self) -> None:
        self.db.close()


@plugin(METADATA, "sqlite", requires=(CONTENT, EVENT, SNAPSHOTTER))
async def init_metadata(ic: InitContext) -> Metadata:
    root = ic.ensure_root()
    db = MetadataDB(os.path.join(root, "meta.db"))
    ic.export("path", db.path)
    content = ic.plugins.get_by_type(CONTENT)
    metadata = Metadata(
        db=db,
        events=ic.plugins.get_single(EVENT),
        content=next(iter(content.values()), None),
        snapshotters=ic.plugins.get_by_type(SNAPSHOTTER),
    )
    metadata.image_store = NamespacedImages(db=db, events=metadata.events)
    if metadata.content is not None:
        metadata.content_store = NamespacedContent(db=db, backend=metadata.content, events=metadata.events)
    metadata.snapshot_stores = await open_snapshot_stores(metadata, ic.timeouts)
    return metadata
