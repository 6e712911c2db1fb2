"""The images service plugin: serves ``Images.*`` over ``metadata.image_store``."""

from __future__ import annotations

from actors.plugin import GC, METADATA, SERVICE, InitContext, plugin
from wire import errdefs

from .service import ImagesService
from .store import NamespacedImages


@plugin(SERVICE, "images-service", requires=(METADATA, GC))
async def init_images(ic: InitContext) -> ImagesService:
    metadata = ic.plugins.get_single(METADATA)
    store: NamespacedImages = metadata.image_store
    try:
        store.gc = ic.plugins.get_single(GC)
    except errdefs.NotFound:
        store.gc = None  # no collector loaded: sync deletes return at once
    return ImagesService(store)
