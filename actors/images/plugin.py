"""The images service plugin: serves ``Images.*`` over ``metadata.image_store``."""

from __future__ import annotations

from actors.plugin import GC, METADATA, SERVICE, InitContext, plugin
from actors.timeouts import register
from wire import errdefs

from .service import ImagesService
from .store import NamespacedImages


SYNC_DELETE = register("io.dockyard.timeout.images.sync-delete", 60.0)


@plugin(SERVICE, "images-service", requires=(METADATA, GC))
async def init_images(ic: InitContext) -> ImagesService:
    metadata = ic.plugins.get_single(METADATA)
    store: NamespacedImages = metadata.image_store
    try:
        store.gc = ic.plugins.get_single(GC)
    except errdefs.NotFound:
        store.gc = None  # no collector loaded: sync deletes return at once
    store.sync_timeout = ic.timeouts(SYNC_DELETE)
    return ImagesService(store)
