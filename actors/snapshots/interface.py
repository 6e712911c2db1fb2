"""The Snapshotter interface every backend implements.

Lifecycle (see ``lifecycle.py`` for the table)::

    prepare(key, parent)  -> ACTIVE   read-write, mountable
    view(key, parent)     -> VIEW     read-only, mountable
    commit(name, key)     ACTIVE key -> COMMITTED name (same storage); usage frozen
    remove(key)           any kind without children

Keys are free-form non-empty strings (``/`` and spaces allowed); they are never
used as path components, only the decimal ids are.  Calls are synchronous and
may block on disk: the daemon runs them in a worker thread.  Every refused call
raises a typed error from ``wire.errdefs`` and changes nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping

from actors.mount import Mount

from .types import Info, Usage

WalkFilter = Callable[[Info], bool]


class Snapshotter(abc.ABC):
    @abc.abstractmethod
    def stat(self, key: str) -> Info:
        """Info of ``key``.  NotFound if there is no such snapshot."""

    @abc.abstractmethod
    def update(self, info: Info, fieldpaths: Collection[str] = ()) -> Info:
        """Change the labels of ``info.name``; returns the new Info.

        ``fieldpaths`` empty or ``labels``: replace all labels; ``labels.<k>``:
        set (or delete, when absent from ``info.labels``) one label.  Any other
        field path: InvalidArgument.  NotFound if the snapshot does not exist.
        """

    @abc.abstractmethod
    def usage(self, key: str) -> Usage:
        """Disk use of ``key`` alone (not its parents).

        Active and View: measured now by walking the tree; Committed: the
        figure frozen at commit.  NotFound if there is no such snapshot.
        """

    @abc.abstractmethod
    def mounts(self, key: str) -> list[Mount]:
        """The mounts that present ``key``'s filesystem.

        NotFound if missing; FailedPrecondition if ``key`` is Committed.
        """

    @abc.abstractmethod
    def prepare(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        """Create an Active snapshot ``key`` on ``parent`` and return its mounts.

        InvalidArgument for an empty key or a parent that is not Committed;
        NotFound if ``parent`` is missing; AlreadyExists if ``key`` exists, or
        if label ``containerd.io/snapshot.ref`` names a Committed snapshot (by
        that label) on the same parent: the layer is already there.
        """

    @abc.abstractmethod
    def view(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        """Like ``prepare`` but creates a read-only View."""

    @abc.abstractmethod
    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn Active ``key`` into Committed ``name``, keeping its storage.

        ``key`` no longer exists afterwards; ``name`` has ``labels`` (only) and
        its usage is measured and frozen.  NotFound if ``key`` is missing;
        FailedPrecondition if it is not Active; AlreadyExists if ``name`` exists.
        """

    @abc.abstractmethod
    def remove(self, key: str) -> None:
        """Remove ``key``.  NotFound if missing; FailedPrecondition if it has
        children.  Storage may be reclaimed later, by ``cleanup``."""

    @abc.abstractmethod
    def walk(self, fn: Callable[[Info], None], filters: WalkFilter | None = None) -> None:
        """Call ``fn`` with the Info of every snapshot ``filters`` accepts,
        oldest first.  ``fn`` may call back into the snapshotter."""

    @abc.abstractmethod
    def cleanup(self) -> None:
        """Delete storage no snapshot owns: leftovers of interrupted prepares
        and of removed snapshots."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store.  Further calls are not allowed."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
