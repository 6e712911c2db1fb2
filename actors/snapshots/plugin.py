"""Backend snapshotter plugins: ``io.dockyard.snapshotter.v1.overlayfs`` and ``.native``.

Each instance is the backend itself (``OverlaySnapshotter`` / ``NativeSnapshotter``)
over ``<root>/<uri>`` (or ``root_path``); the metadata plugin collects them into
``metadata.snapshotters`` and wraps each in a ``NamespacedSnapshotter``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import attrs
import trio

from actors.mount import MNT_DETACH, Mount, mount, unmount
from actors.plugin import SNAPSHOTTER, InitContext, SkipPlugin, plugin
from wire.errdefs import DockyardError

from .native import NativeSnapshotter
from .overlay import OverlaySnapshotter


@attrs.frozen(kw_only=True)
class OverlayConfig:
    root_path: str = ""  # default <root>/io.dockyard.snapshotter.v1.overlayfs
    sync_remove: bool = False  # delete storage inside Remove instead of at GC's Cleanup
    mount_options: list[str] = attrs.Factory(list)  # added to every overlay mount


@attrs.frozen(kw_only=True)
class NativeConfig:
    root_path: str = ""  # default <root>/io.dockyard.snapshotter.v1.native


def _root(ic: InitContext, root_path: str) -> str:
    if root_path:
        os.makedirs(root_path, mode=0o700, exist_ok=True)
        return os.path.abspath(root_path)
    return ic.ensure_root()


def _kernel_has_overlay() -> bool:
    try:
        with open("/proc/filesystems") as fh:
            return any(line.split()[-1:] == ["overlay"] for line in fh)
    except OSError:
        return False


def probe_overlay(root: str) -> None:
    """Mount a two-lower overlay under ``root`` once (as containerd does); typed error if it fails."""
    base = tempfile.mkdtemp(prefix="overlay-probe-", dir=root)
    try:
        paths = {n: os.path.join(base, n) for n in ("lower1", "lower2", "upper", "work", "merged")}
        for p in paths.values():
            os.mkdir(p)
        options = (f"lowerdir={paths['lower2']}:{paths['lower1']}", f"upperdir={paths['upper']}",
                   f"workdir={paths['work']}")
        mount(Mount(type="overlay", source="overlay", options=options), paths["merged"])
        unmount(paths["merged"], MNT_DETACH)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@plugin(SNAPSHOTTER, "overlayfs", config=OverlayConfig)
async def init_overlayfs(ic: InitContext) -> OverlaySnapshotter:
    if not _kernel_has_overlay():
        raise SkipPlugin("the kernel has no overlay filesystem")
    root = _root(ic, ic.config.root_path)
    try:
        await trio.to_thread.run_sync(probe_overlay, root)
    except DockyardError as exc:
        raise SkipPlugin(f"overlayfs cannot be mounted on {root}: {exc}") from None
    ic.export("root", root)
    return await trio.to_thread.run_sync(
        lambda: OverlaySnapshotter(root, sync_remove=ic.config.sync_remove,
                                   mount_options=tuple(ic.config.mount_options)))


@plugin(SNAPSHOTTER, "native", config=NativeConfig)
async def init_native(ic: InitContext) -> NativeSnapshotter:
    root = _root(ic, ic.config.root_path)
    ic.export("root", root)
    return await trio.to_thread.run_sync(NativeSnapshotter, root)
