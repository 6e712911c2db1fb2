"""Content plugins: the local backend and the ``Content.*`` RPC service.

``io.dockyard.content.v1.content`` is the backend ``LocalStore`` (shared
bytes; the metadata plugin wraps it in ``NamespacedContent`` as
``metadata.content_store``).  ``io.dockyard.service.v1.content-service`` serves
that namespaced store over msgpack-RPC.
"""

from __future__ import annotations

import trio

from actors.plugin import CONTENT, METADATA, SERVICE, InitContext, SkipPlugin, plugin

from .local import LocalStore
from .service import ContentService


@plugin(CONTENT, "content")
async def init_content(ic: InitContext) -> LocalStore:
    root = ic.ensure_root()
    store = await trio.to_thread.run_sync(LocalStore, root)
    ic.export("root", root)
    return store


@plugin(SERVICE, "content-service", requires=(METADATA,))
async def init_content_service(ic: InitContext) -> ContentService:
    metadata = ic.plugins.get_single(METADATA)
    store = getattr(metadata, "content_store", None)
    if store is None:
        raise SkipPlugin("no content store is loaded")
    return ContentService(store)
