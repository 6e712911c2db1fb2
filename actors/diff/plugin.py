"""The differ plugin ``io.dockyard.differ.v1.walking``: a ``Differ`` over the namespaced content store."""

from __future__ import annotations

import trio

from actors.plugin import DIFFER, METADATA, InitContext, plugin
from wire.errdefs import FailedPrecondition

from .differ import Differ, prepare_dirs


@plugin(DIFFER, "walking", requires=(METADATA,))
async def init_walking(ic: InitContext) -> Differ:
    metadata = ic.plugins.get_single(METADATA)
    if metadata.content_store is None:
        raise FailedPrecondition("the walking differ needs a content store, and none is loaded")
    mount_dir, spool_dir = await trio.to_thread.run_sync(prepare_dirs, ic.ensure_root(), ic.ensure_state())
    return Differ(content=metadata.content_store, mount_dir=mount_dir, spool_dir=spool_dir)
