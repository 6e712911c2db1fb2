"""The overlayfs snapshotter: ``snapshots/<id>/fs`` is a layer, stacked by overlay.

``fs`` holds the snapshot's own changes (the upper dir while Active), ``work``
exists only for Active snapshots (overlay's workdir).  Remove drops the record;
the directory goes at ``cleanup`` (or at once with ``sync_remove=True``).
"""

from __future__ import annotations

import os

from actors.mount import Mount, overlay_supports_index_option

from .dirbacked import DirSnapshotter
from .store import Row
from .types import Kind


class OverlaySnapshotter(DirSnapshotter):
    name = "overlayfs"

    def __init__(self, root: str, *, sync_remove: bool = False, mount_options=(),
                 synchronous: str = "FULL") -> None:
        super().__init__(root, sync_remove=sync_remove, synchronous=synchronous)
        extras = []
        if overlay_supports_index_option():
            extras.append("index=off")
        extras.extend(mount_options)
        self.overlay_options = tuple(extras)

    def _fs(self, id_: int) -> str:
        return os.path.join(self._dir(id_), "fs")

    def _needs_dir(self, kind: Kind, parents: list[Row]) -> bool:
        return True

    def _build(self, path: str, kind: Kind, parents: list[Row]) -> None:
        fs = os.path.join(path, "fs")
        os.mkdir(fs, 0o755)
        os.chmod(fs, 0o755)  # not masked by umask
        if kind == Kind.ACTIVE:
            os.mkdir(os.path.join(path, "work"), 0o711)
        if parents:
            st = os.stat(self._fs(parents[0].id))
            os.lchown(fs, st.st_uid, st.st_gid)

    def _mounts(self, row: Row, parents: list[Row]) -> list[Mount]:
        active = row.kind == Kind.ACTIVE
        if not parents:
            mode = "rw" if active else "ro"
            return [Mount(type="bind", source=self._fs(row.id), options=(mode, "rbind"))]
        if not active and len(parents) == 1:
            return [Mount(type="bind", source=self._fs(parents[0].id), options=("ro", "rbind"))]
        lower = "lowerdir=" + ":".join(self._fs(p.id) for p in parents)
        if not active:
            return [Mount(type="overlay", source="overlay", options=(*self.overlay_options, lower))]
        return [Mount(type="overlay", source="overlay", options=(
            *self.overlay_options,
            f"workdir={os.path.join(self._dir(row.id), 'work')}",
            f"upperdir={self._fs(row.id)}",
            lower,
        ))]

    def _usage_path(self, row: Row) -> str:
        return self._fs(row.id)
