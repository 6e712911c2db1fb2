"""Apply and compare on *mounts* (what snapshotters hand out), not directories.

Avoids mounting where the answer is already a directory: one overlay mount
with ``upperdir=`` is applied straight into that upperdir (overlay whiteouts,
lowers as parents) and compared from it alone when the other side is exactly
its lowers; one writable bind mount is its source directory.  Everything else
is mounted on a temporary directory, read-only for compare (an overlay loses
its upperdir/workdir and shows the upper as its top lower, so the live
mount's upperdir is never mounted twice).  Blocking: call from a thread.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import BinaryIO

import attrs

from actors.mount import Mount, temp_mount

from .apply import ApplyResult, apply_layer
from .compare import CompareResult, compare, compare_overlay_upper
from .media import Compression


@attrs.frozen(kw_only=True)
class OverlayLayers:
    upper: str
    lowers: tuple[str, ...]  # nearest first


def overlay_layers(mounts: Sequence[Mount]) -> OverlayLayers | None:
    """The upperdir and lowerdirs of a single overlay mount that has an upperdir."""
    if len(mounts) != 1 or mounts[0].type != "overlay" or mounts[0].target:
        return None
    upper, lowers = "", ()
    for opt in mounts[0].options:
        if opt.startswith("upperdir="):
            upper = opt[len("upperdir="):]
        elif opt.startswith("lowerdir="):
            lowers = tuple(p for p in opt[len("lowerdir="):].split(":") if p)
    return OverlayLayers(upper=upper, lowers=lowers) if upper else None


def stacked_dirs(mounts: Sequence[Mount]) -> tuple[str, ...] | None:
    """The directories ``mounts`` stack read-only (nearest first), when that is all they do."""
    if not mounts:
        return ()
    if len(mounts) != 1 or mounts[0].target:
        return None
    m = mounts[0]
    if m.type == "bind":
        return (m.source,)
    if m.type == "overlay" and overlay_layers(mounts) is None:
        for opt in m.options:
            if opt.startswith("lowerdir="):
                return tuple(p for p in opt[len("lowerdir="):].split(":") if p)
    return None


def writable_dir(mounts: Sequence[Mount]) -> str | None:
    """The directory a single writable bind mount shows."""
    if len(mounts) == 1 and mounts[0].type == "bind" and not mounts[0].target and not mounts[0].readonly():
        return mounts[0].source
    return None


def readonly(mounts: Sequence[Mount]) -> list[Mount]:
    """``mounts`` made read-only; an overlay's upper becomes its top lower."""
    out = []
    for m in mounts:
        opts = [o for o in m.options if o not in ("rw", "ro")]
        if m.type == "overlay":
            layers = overlay_layers([attrs.evolve(m, target="")])
            if layers is not None:
                opts = [o for o in opts if not o.startswith(("upperdir=", "workdir=", "lowerdir="))]
                opts.append("lowerdir=" + ":".join((layers.upper, *layers.lowers)))
        out.append(attrs.evolve(m, options=(*opts, "ro")))
    return out


@functools.cache
def in_user_namespace() -> bool:
    try:
        with open("/proc/self/uid_map") as fh:
            return fh.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def apply_to_mounts(stream: BinaryIO, media_type: str, mounts: Sequence[Mount], mount_dir: str) -> ApplyResult:
    """Extract the layer blob ``stream`` into what ``mounts`` show."""
    layers = overlay_layers(mounts)
    if layers is not None and not in_user_namespace():
        return apply_layer(stream, layers.upper, media_type=media_type, overlay=True, lowers=layers.lowers)
    direct = writable_dir(mounts)
    if direct is not None:
        return apply_layer(stream, direct, media_type=media_type)
    with temp_mount(mounts, parent_dir=mount_dir) as root:
        return apply_layer(stream, root, media_type=media_type)


def compare_mounts(lower: Sequence[Mount], upper: Sequence[Mount], out: BinaryIO, *,
                   compression: Compression, mount_dir: str,
                   source_date_epoch: int | None = None) -> CompareResult:
    """Write the layer that turns what ``lower`` shows into what ``upper`` shows."""
    layers = overlay_layers(upper)
    if layers is not None and stacked_dirs(lower) == layers.lowers:
        return compare_overlay_upper(layers.upper, layers.lowers, out, compression=compression,
                                     source_date_epoch=source_date_epoch)
    with _readonly_root(lower, mount_dir) as lower_root, _readonly_root(upper, mount_dir) as upper_root:
        return compare(lower_root, upper_root, out, compression=compression,
                       source_date_epoch=source_date_epoch)


@contextlib.contextmanager
def _readonly_root(mounts: Sequence[Mount], mount_dir: str) -> Iterator[str]:
    if not mounts:
        with tempfile.TemporaryDirectory(prefix="empty-", dir=mount_dir) as empty:
            yield empty
        return
    stacked = stacked_dirs(mounts)
    if stacked is not None and len(stacked) == 1:
        yield stacked[0]  # one directory: read it where it is
        return
    with temp_mount(readonly(mounts), parent_dir=mount_dir) as root:
        yield root


def ensure_mount_dir(path: str) -> str:
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path
