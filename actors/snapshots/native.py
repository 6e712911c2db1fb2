"""The native snapshotter: every Active snapshot is a full copy of its parent.

``snapshots/<id>`` is the tree itself, presented by a single bind mount.  A
View with a parent owns no storage: it bind-mounts the parent read-only.
Remove deletes the storage at once (renamed to ``rm-<id>`` first).
"""

from __future__ import annotations

import os

from actors.mount import Mount

from .copytree import copy_tree
from .dirbacked import DirSnapshotter
from .store import Row
from .types import Kind


class NativeSnapshotter(DirSnapshotter):
    name = "native"

    def _needs_dir(self, kind: Kind, parents: list[Row]) -> bool:
        return kind == Kind.ACTIVE or not parents

    def _build(self, path: str, kind: Kind, parents: list[Row]) -> None:
        if parents:
            copy_tree(self._dir(parents[0].id), path)
        else:
            os.chmod(path, 0o755)

    def _mounts(self, row: Row, parents: list[Row]) -> list[Mount]:
        if row.kind == Kind.VIEW and parents:
            return [Mount(type="bind", source=self._dir(parents[0].id), options=("ro", "rbind"))]
        mode = "rw" if row.kind == Kind.ACTIVE else "ro"
        return [Mount(type="bind", source=self._dir(row.id), options=(mode, "rbind"))]

    def _usage_path(self, row: Row) -> str:
        return self._dir(row.id)

    def _removes_storage(self) -> bool:
        return True
