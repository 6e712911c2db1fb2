"""Shared machinery of snapshotters that keep one directory per snapshot id.

On disk under ``root``: ``metadata.db`` (the private store), ``lock`` (held
with flock while open: one process per root), and ``snapshots/`` holding
``<id>`` (live), ``new-*`` (being built) and ``rm-*`` (being deleted).

New storage is built in ``snapshots/new-*`` without the store lock, then
renamed to ``snapshots/<id>`` inside the transaction that records it, so a
crash leaves either nothing visible or an unowned directory that ``cleanup``
reclaims.  Slow work (copying, measuring, deleting trees) never holds the lock.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Mapping

from actors.mount import Mount
from oci.identity import LABEL_SNAPSHOT_REF
from wire.errdefs import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)

from . import lifecycle
from .interface import Snapshotter, WalkFilter
from .store import MetaStore, Row, Tx
from .types import Info, Kind, Usage
from .usage import disk_usage

log = logging.getLogger("dockyard.snapshots")

BUILD_PREFIX = "new-"
REMOVE_PREFIX = "rm-"


class DirSnapshotter(Snapshotter):
    """Backends fill in the four storage hooks at the bottom."""

    name = "dir"

    def __init__(self, root: str, *, sync_remove: bool = False, synchronous: str = "FULL") -> None:
        self.root = os.path.abspath(root)
        self.sync_remove = sync_remove
        self.snapshots_dir = os.path.join(self.root, "snapshots")
        os.makedirs(self.snapshots_dir, mode=0o700, exist_ok=True)
        self._lock_fd = _lock_root(self.root)
        try:
            self._store = MetaStore.open(os.path.join(self.root, "metadata.db"), synchronous=synchronous)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._building: set[str] = set()  # new-* dirs of prepares in flight

    # -- paths --------------------------------------------------------------

    def _dir(self, id_: int) -> str:
        return os.path.join(self.snapshots_dir, str(id_))

    # -- queries ------------------------------------------------------------

    def stat(self, key: str) -> Info:
        with self._store.read() as tx:
            return tx.require(key).info()

    def mounts(self, key: str) -> list[Mount]:
        with self._store.read() as tx:
            row = tx.require(key)
            lifecycle.check("mounts", key, row.kind)
            return self._mounts(row, tx.chain(row)[1:])

    def usage(self, key: str) -> Usage:
        with self._store.read() as tx:
            row = tx.require(key)
        if row.kind == Kind.COMMITTED:
            return Usage(size=row.size, inodes=row.inodes)
        return disk_usage(self._usage_path(row))

    def walk(self, fn: Callable[[Info], None], filters: WalkFilter | None = None) -> None:
        with self._store.read() as tx:
            infos = [r.info() for r in tx.all()]
        for info in infos:
            if filters is None or filters(info):
                fn(info)

    # -- mutations ----------------------------------------------------------

    def update(self, info: Info, fieldpaths: Collection[str] = ()) -> Info:
        key = lifecycle.check_key(info.name)
        with self._store.write() as tx:
            row = tx.require(key)
            labels = _updated_labels(key, row.labels, info.labels, fieldpaths)
            return tx.set_labels(row.id, labels, time.time_ns()).info()

    def prepare(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(self, key: str, parent: str = "", labels: Mapping[str, str] | None = None) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def _create(self, kind: Kind, key: str, parent: str, labels) -> list[Mount]:
        lifecycle.check_key(key)
        labels = _checked_labels(key, labels)
        with self._store.read() as tx:
            parents = self._check_create(tx, key, parent, labels)
        build = None
        if self._needs_dir(kind, parents):
            build = self._start_build()
        try:
            if build is not None:
                self._build(build, kind, parents)
            return self._record(kind, key, parent, labels, parents, build)
        finally:
            if build is not None:
                with self._store.lock:
                    self._building.discard(os.path.basename(build))
                if os.path.lexists(build):
                    shutil.rmtree(build, ignore_errors=True)

    def _check_create(self, tx: Tx, key: str, parent: str, labels: Mapping[str, str]) -> list[Row]:
        """Parent chain (nearest first) if ``key`` may be created on ``parent``.

        A ``containerd.io/snapshot.ref`` label naming a committed snapshot on
        the same parent is AlreadyExists: the layer is there already.
        """
        if tx.get(key) is not None:
            raise AlreadyExists(f"snapshot {key!r}: already exists")
        chain: list[Row] = []
        if parent:
            row = tx.get(parent)
            if row is None:
                raise NotFound(f"snapshot {key!r}: parent {parent!r}: not found")
            lifecycle.check_parent(key, parent, row.kind)
            chain = tx.chain(row)
        target = labels.get(LABEL_SNAPSHOT_REF)
        if target:
            found = tx.committed_with_ref(target, chain[0].id if chain else None)
            if found is not None:
                raise AlreadyExists(f"snapshot {key!r}: target {target!r} exists as {found!r}")
        return chain

    def _start_build(self) -> str:
        with self._store.lock:
            path = tempfile.mkdtemp(prefix=BUILD_PREFIX, dir=self.snapshots_dir)
            self._building.add(os.path.basename(path))
        return path

    def _record(self, kind: Kind, key: str, parent: str, labels, parents: list[Row], build: str | None) -> list[Mount]:
        stale = None
        with self._store.write() as tx:
            current = self._check_create(tx, key, parent, labels)
            if [r.id for r in current] != [r.id for r in parents]:
                raise Aborted(f"snapshot {key!r}: parent {parent!r} changed during prepare")
            row = tx.insert(key=key, kind=kind, parent_id=parents[0].id if parents else None,
                            labels=labels, now=time.time_ns())
            if build is not None:
                final = self._dir(row.id)
                if os.path.lexists(final):
                    # Left by a crash after a rename whose transaction was lost:
                    # the id is free again, so that directory is garbage.
                    stale = os.path.join(self.snapshots_dir, f"{REMOVE_PREFIX}{row.id}-{uuid.uuid4().hex[:8]}")
                    os.rename(final, stale)
                os.rename(build, final)
                try:
                    mounts = self._mounts(row, parents)
                except BaseException:
                    os.rename(final, build)
                    raise
            else:
                mounts = self._mounts(row, parents)
        if stale:
            shutil.rmtree(stale, ignore_errors=True)
        return mounts

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        lifecycle.check_key(name, "name")
        lifecycle.check_key(key)
        labels = _checked_labels(name, labels)
        with self._store.read() as tx:
            row = self._check_commit(tx, name, key)
        measured = disk_usage(self._usage_path(row))
        with self._store.write() as tx:
            now = self._check_commit(tx, name, key)
            if now.id != row.id:
                raise Aborted(f"snapshot {key!r}: replaced during commit")
            tx.commit_active(row.id, name=name, size=measured.size, inodes=measured.inodes,
                             labels=labels, now=time.time_ns())

    @staticmethod
    def _check_commit(tx: Tx, name: str, key: str) -> Row:
        row = tx.require(key)
        lifecycle.check("commit", key, row.kind)
        if tx.get(name) is not None:
            raise AlreadyExists(f"snapshot {name!r}: already exists")
        return row

    def remove(self, key: str) -> None:
        lifecycle.check_key(key)
        with self._store.write() as tx:
            row = tx.require(key)
            lifecycle.check("remove", key, row.kind)
            children = tx.children(row.id)
            if children:
                raise FailedPrecondition(
                    f"snapshot {key!r}: has {len(children)} children, e.g. {children[0]!r}")
            tx.delete(row.id)
        # The record is gone first: a crash here leaves an unowned directory
        # (reclaimed by cleanup), never a record without its storage.
        if self._removes_storage():
            self._discard(self._dir(row.id), row.id)

    def _discard(self, path: str, id_: int) -> None:
        doomed = os.path.join(self.snapshots_dir, f"{REMOVE_PREFIX}{id_}")
        try:
            os.rename(path, doomed)
        except FileNotFoundError:
            return
        except OSError as e:
            log.warning("snapshot storage %s not removed (cleanup retries): %s", path, e)
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def cleanup(self) -> None:
        doomed: list[str] = []
        with self._store.read() as tx:
            live = {str(i) for i in tx.ids()}
            for entry in os.listdir(self.snapshots_dir):
                if entry in live or entry in self._building:
                    continue
                path = os.path.join(self.snapshots_dir, entry)
                if entry.startswith(REMOVE_PREFIX):
                    doomed.append(path)
                    continue
                # Rename under the lock: an id freed by a lost transaction may
                # be handed out again right after we let go of it.
                target = os.path.join(self.snapshots_dir, f"{REMOVE_PREFIX}{entry}-{uuid.uuid4().hex[:8]}")
                try:
                    os.rename(path, target)
                except FileNotFoundError:  # a concurrent remove took it
                    continue
                doomed.append(target)
        for path in doomed:
            log.info("cleanup: removing unowned snapshot storage %s", path)
            _remove_tree(path)

    async def aclose(self) -> None:
        """Plugin shutdown hook; closing is quick, so no worker thread."""
        self.close()

    def close(self) -> None:
        if self._lock_fd >= 0:
            self._store.close()
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- storage hooks ------------------------------------------------------

    def _needs_dir(self, kind: Kind, parents: list[Row]) -> bool:
        raise NotImplementedError

    def _build(self, path: str, kind: Kind, parents: list[Row]) -> None:
        """Fill the fresh directory ``path`` for a new snapshot."""
        raise NotImplementedError

    def _mounts(self, row: Row, parents: list[Row]) -> list[Mount]:
        raise NotImplementedError

    def _usage_path(self, row: Row) -> str:
        raise NotImplementedError

    def _removes_storage(self) -> bool:
        return self.sync_remove


def _remove_tree(path: str) -> None:
    """Delete ``path``; another remover (a concurrent remove) may race us."""

    def missing_is_fine(func, failed, exc_info):
        if not isinstance(exc_info[1], FileNotFoundError):
            raise exc_info[1]

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=missing_is_fine)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _lock_root(root: str) -> int:
    fd = os.open(os.path.join(root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise Unavailable(f"snapshotter root {root!r}: in use by another snapshotter") from None
        raise
    return fd


def _checked_labels(key: str, labels) -> dict[str, str]:
    labels = dict(labels or {})
    for k, v in labels.items():
        if not isinstance(k, str) or not isinstance(v, str) or not k:
            raise InvalidArgument(f"snapshot {key!r}: label {k!r}={v!r}: keys and values must be strings")
    return labels


def _updated_labels(key: str, old: dict[str, str], new: Mapping[str, str], fieldpaths: Collection[str]) -> dict[str, str]:
    new = _checked_labels(key, new)
    if not fieldpaths:
        return new
    labels = dict(old)
    for path in fieldpaths:
        if path == "labels":
            labels = dict(new)
        elif path.startswith("labels."):
            name = path[len("labels."):]
            if name in new:
                labels[name] = new[name]
            else:
                labels.pop(name, None)
        else:
            raise InvalidArgument(f"snapshot {key!r}: cannot update field {path!r}")
    return labels
