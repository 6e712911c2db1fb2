"""``NamespacedSnapshotter``: one backend snapshotter seen through meta.db, per namespace.

Keys, parents, labels and lease membership live in meta.db; the backend holds
storage under backend keys ``<ns>/<seq>/<key>`` and gets only the inherited
labels (``containerd.io/snapshot/*``, ``containerd.io/snapshot.ref``).

Every create is reserve → backend call (in a worker thread) → settle:

1. one write transaction checks the request and inserts a *pending* row that
   reserves the key, names the new backend key and joins the request's lease;
2. the backend prepares / views / commits, off the event loop;
3. one write transaction makes the row live (a commit also drops the active row).

A failure or cancellation drops the reservation (and what the backend made).
After a kill -9 the daemon finds pending rows at start (``recover``): creates
are undone, commits the backend finished are completed.  Operations on one key
take a per-key lock, so they run in order like containerd's transactions.

``containerd.io/snapshot.ref=T`` on a create: when T exists in the namespace the
create answers AlreadyExists (T joins the lease); when the backend answers
AlreadyExists (a committed snapshot labelled T on the same parent, possibly
made by another namespace) T is linked to that backend snapshot in this
namespace and the create answers AlreadyExists.  Remove only deletes the row
and marks the database dirty: GC deletes backend snapshots nobody names (it
checks the name and removes under meta.db's lock, so a row committed before
its check keeps the snapshot; a link re-checks the backend after naming it).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

import attrs
import trio

from actors.metadata import leases
from actors.metadata.db import MetadataDB, now_ns
from actors.mount import Mount
from actors.timeouts import register
from oci.identity import LABEL_SNAPSHOT_REF
from wire import filters as filterlang
from wire.errdefs import (
    AlreadyExists, DockyardError, FailedPrecondition, Internal, InvalidArgument, NotFound,
)
from wire.events import (
    TOPIC_SNAPSHOT_COMMIT, TOPIC_SNAPSHOT_PREPARE, TOPIC_SNAPSHOT_REMOVE,
    SnapshotCommit, SnapshotPrepare, SnapshotRemove,
)
from wire.identifiers import validate_free_form

from . import records
from .interface import Snapshotter
from .keylocks import KeyLocks
from .records import PENDING_COMMIT, PENDING_CREATE, Row, SnapshotInfo
from .types import Info, Kind, Usage

log = logging.getLogger("dockyard.snapshots")

KEY_LOCK = register("io.dockyard.timeout.snapshots.key_lock", 120.0)
CLEANUP = register("io.dockyard.timeout.snapshots.cleanup", 30.0)


@attrs.frozen(kw_only=True)
class _Reservation:
    key: str
    bkey: str
    bparent: str = ""
    pending: str = PENDING_CREATE


@attrs.define(eq=False)
class NamespacedSnapshotter:
    name: str
    backend: Snapshotter
    db: MetadataDB
    events: Any  # publish(namespace, topic, event)
    lock_timeout: float = 120.0
    cleanup_timeout: float = 30.0
    _locks: KeyLocks = attrs.Factory(KeyLocks)

    # -- queries --------------------------------------------------------------------------

    async def stat(self, ns: str, key: str) -> SnapshotInfo:
        return self._live(ns, key).info()

    async def list(self, ns: str, filters: Collection[str] = ()) -> list[SnapshotInfo]:
        """Live snapshots of ``ns`` (by key) that match ``filters`` (kind name parent labels.<k>)."""
        flt = filterlang.parse_any(list(filters))
        with self.db.read() as conn:
            rows = records.live_rows(conn, ns, self.name)
        infos = [r.info() for r in rows]
        return [i for i in infos if flt.match(filterlang.MappingAdaptor(i.filter_view()))]

    async def mounts(self, ns: str, key: str) -> list[Mount]:
        row = self._live(ns, key)
        if row.kind == Kind.COMMITTED:
            raise FailedPrecondition(f"snapshot {key!r}: mounts not allowed on a committed snapshot")
        return await trio.to_thread.run_sync(self.backend.mounts, row.backend_key)

    async def usage(self, ns: str, key: str) -> Usage:
        row = self._live(ns, key)
        return await trio.to_thread.run_sync(self.backend.usage, row.backend_key)

    def _live(self, ns: str, key: str) -> Row:
        validate_free_form(key, "snapshot key")
        with self.db.read() as conn:
            row = records.get_live(conn, ns, self.name, key)
        if row is None:
            raise NotFound(f"snapshot {key!r}: not found")
        return row

    # -- create ---------------------------------------------------------------------------

    async def prepare(self, ns: str, key: str, parent: str = "", labels: Mapping[str, str] | None = None,
                      lease: str | None = None) -> list[Mount]:
        """An Active snapshot ``key`` on committed ``parent``; its mounts."""
        return await self._create(ns, Kind.ACTIVE, key, parent, labels, lease)

    async def view(self, ns: str, key: str, parent: str = "", labels: Mapping[str, str] | None = None,
                   lease: str | None = None) -> list[Mount]:
        """A read-only View ``key`` of committed ``parent``; its mounts.  No event."""
        return await self._create(ns, Kind.VIEW, key, parent, labels, lease)

    async def _create(self, ns: str, kind: Kind, key: str, parent: str,
                      labels: Mapping[str, str] | None, lease: str | None) -> list[Mount]:
        validate_free_form(key, "snapshot key")
        if parent:
            validate_free_form(parent, "parent snapshot key")
        labels = records.checked_labels(labels)
        target = labels.get(LABEL_SNAPSHOT_REF, "")
        names = [(ns, key)] + ([(ns, target)] if target else [])
        async with self._locks.hold(names, timeout=self.lock_timeout, what=f"snapshot {key!r}"):
            for _attempt in range(2):
                mounts = await self._create_once(ns, kind, key, parent, labels, target, lease)
                if mounts is not None:
                    break
            else:
                raise Internal(f"snapshot {key!r}: target {target!r} kept vanishing while being linked")
        if kind == Kind.ACTIVE:
            self.events.publish(ns, TOPIC_SNAPSHOT_PREPARE,
                                SnapshotPrepare(key=key, parent=parent, snapshotter=self.name))
        return mounts

    async def _create_once(self, ns: str, kind: Kind, key: str, parent: str, labels: dict[str, str],
                           target: str, lease: str | None) -> list[Mount] | None:
        """Mounts, or None when a linked target vanished under a collector (try again)."""
        res = self._reserve_create(ns, kind, key, parent, target, labels, lease)
        made = False
        try:
            create = self.backend.prepare if kind == Kind.ACTIVE else self.backend.view
            try:
                mounts = await trio.to_thread.run_sync(create, res.bkey, res.bparent,
                                                       records.inherited_labels(labels))
                made = True
            except AlreadyExists:
                if not target:
                    raise Internal(f"snapshot {key!r}: backend key {res.bkey!r} unexpectedly exists") from None
                await self._link_target(ns, key, parent, target, res, labels, lease)
                return None  # the target vanished: reserve again
            with self.db.write() as tx:
                tx.ensure_namespace(ns)
                if not records.settle(tx, ns, self.name, key, res.bkey, PENDING_CREATE, now_ns()):
                    raise NotFound(f"snapshot {key!r}: removed while it was being created")
            return mounts
        except BaseException:
            self._drop(ns, key, res.bkey, pending=res.pending)
            if made:
                await self._remove_backend_quietly(res.bkey)
            raise

    def _reserve_create(self, ns: str, kind: Kind, key: str, parent: str, target: str,
                        labels: dict[str, str], lease: str | None) -> _Reservation:
        with self.db.write() as tx:
            tx.ensure_namespace(ns)
            rtype = leases.snapshots(self.name)
            if target and records.get_live(tx, ns, self.name, target) is not None:
                leases.add_to_lease(tx, ns, lease, rtype, target)
                target_exists = True
            else:
                target_exists = False
                if records.get(tx, ns, self.name, key) is not None:
                    raise AlreadyExists(f"snapshot {key!r}: already exists")
                bparent = ""
                if parent:
                    prow = records.get_live(tx, ns, self.name, parent)
                    if prow is None:
                        raise NotFound(f"snapshot {key!r}: parent {parent!r}: not found")
                    if prow.kind != Kind.COMMITTED:
                        raise InvalidArgument(
                            f"snapshot {key!r}: parent {parent!r} is {prow.kind.label}, not committed")
                    bparent = prow.backend_key
                bkey = records.backend_key(ns, tx.next_sequence(self._sequence(ns)), key)
                now = now_ns()
                records.insert(tx, ns, self.name, key=key, bkey=bkey, parent=parent, kind=kind,
                               pending=PENDING_CREATE, labels=labels, created_at=now, updated_at=now)
                leases.add_to_lease(tx, ns, lease, rtype, key)
        if target_exists:
            raise AlreadyExists(f"target snapshot {target!r}: already exists")
        return _Reservation(key=key, bkey=bkey, bparent=bparent)

    async def _link_target(self, ns: str, key: str, parent: str, target: str, res: _Reservation,
                           labels: dict[str, str], lease: str | None) -> None:
        """Name the backend's committed snapshot for ``target`` as ``target`` here; AlreadyExists.

        Returns (instead of raising) when the backend snapshot vanished meanwhile.
        """
        found = await trio.to_thread.run_sync(self._find_ref_target, target, res.bparent)
        if found is None:
            raise NotFound(f"target snapshot {target!r}: not found in snapshotter {self.name!r}")
        merged = {**found.labels, **labels}
        rtype = leases.snapshots(self.name)
        with self.db.write() as tx:
            tx.ensure_namespace(ns)
            records.delete(tx, ns, self.name, key, bkey=res.bkey)
            leases.remove_from_leases(tx, ns, rtype, key)
            linked = records.get(tx, ns, self.name, target) is None
            if linked:
                records.insert(tx, ns, self.name, key=target, bkey=found.name, parent=parent,
                               kind=Kind.COMMITTED, pending="", labels=merged,
                               created_at=found.created, updated_at=found.updated)
            leases.add_to_lease(tx, ns, lease, rtype, target)
        if linked:
            # A collector may have removed it just before our row named it.
            try:
                await trio.to_thread.run_sync(self.backend.stat, found.name)
            except NotFound:
                with self.db.write() as tx:
                    records.delete(tx, ns, self.name, target, bkey=found.name)
                    leases.remove_from_leases(tx, ns, rtype, target)
                return
        raise AlreadyExists(f"target snapshot {target!r}: already exists (backend {found.name!r})")

    def _find_ref_target(self, target: str, bparent: str) -> Info | None:
        hits: list[Info] = []

        def accept(info: Info) -> bool:
            return (info.kind == Kind.COMMITTED and info.parent == bparent
                    and info.labels.get(LABEL_SNAPSHOT_REF) == target)

        self.backend.walk(hits.append, accept)
        return hits[0] if hits else None

    # -- commit ---------------------------------------------------------------------------

    async def commit(self, ns: str, name: str, key: str, labels: Mapping[str, str] | None = None,
                     lease: str | None = None) -> None:
        """Turn Active ``key`` into Committed ``name`` (same storage), with ``labels`` only."""
        validate_free_form(name, "snapshot name")
        validate_free_form(key, "snapshot key")
        labels = records.checked_labels(labels)
        async with self._locks.hold([(ns, key), (ns, name)], timeout=self.lock_timeout,
                                    what=f"snapshot {key!r}"):
            source, res = self._reserve_commit(ns, name, key, labels, lease)
            try:
                await trio.to_thread.run_sync(self.backend.commit, res.bkey, source.backend_key,
                                              records.inherited_labels(labels))
            except BaseException:
                self._drop(ns, name, res.bkey, pending=res.pending)
                raise
            self._settle_commit(ns, name, key, source, res)
        self.events.publish(ns, TOPIC_SNAPSHOT_COMMIT, SnapshotCommit(key=key, name=name, snapshotter=self.name))

    def _reserve_commit(self, ns: str, name: str, key: str, labels: dict[str, str],
                        lease: str | None) -> tuple[Row, _Reservation]:
        with self.db.write() as tx:
            tx.ensure_namespace(ns)
            source = records.get_live(tx, ns, self.name, key)
            if source is None:
                raise NotFound(f"snapshot {key!r}: not found")
            if source.kind != Kind.ACTIVE:
                raise FailedPrecondition(f"snapshot {key!r}: is {source.kind.label}, only an active one commits")
            if records.get(tx, ns, self.name, name) is not None:
                raise AlreadyExists(f"snapshot {name!r}: already exists")
            bkey = records.backend_key(ns, tx.next_sequence(self._sequence(ns)), name)
            pending = PENDING_COMMIT + key
            now = now_ns()
            records.insert(tx, ns, self.name, key=name, bkey=bkey, parent=source.parent, kind=Kind.COMMITTED,
                           pending=pending, labels=labels, created_at=now, updated_at=now)
            leases.add_to_lease(tx, ns, lease, leases.snapshots(self.name), name)
        return source, _Reservation(key=name, bkey=bkey, pending=pending)

    def _settle_commit(self, ns: str, name: str, key: str, source: Row, res: _Reservation) -> None:
        rtype = leases.snapshots(self.name)
        with self.db.write() as tx:
            settled = records.settle(tx, ns, self.name, name, res.bkey, res.pending, now_ns())
            # The backend renamed the active's storage: its row names nothing now.
            if records.delete(tx, ns, self.name, key, bkey=source.backend_key):
                leases.remove_from_leases(tx, ns, rtype, key)
            if not settled:
                tx.mark_deleted()  # the committed backend snapshot is nobody's: GC takes it
        if not settled:
            raise NotFound(f"snapshot {name!r}: removed while {key!r} was being committed")

    # -- change ---------------------------------------------------------------------------

    async def update(self, ns: str, info: SnapshotInfo, fieldpaths: Collection[str] | None = None) -> SnapshotInfo:
        """Change labels only (containerd's field paths ``labels`` / ``labels.<k>``)."""
        name = validate_free_form(info.name, "snapshot name")
        async with self._locks.hold([(ns, name)], timeout=self.lock_timeout, what=f"snapshot {name!r}"):
            row = self._live(ns, name)
            labels = records.updated_labels(name, row.labels, info.labels, fieldpaths)
            old, new = records.inherited_labels(row.labels), records.inherited_labels(labels)
            if old != new:
                changed = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
                binfo = Info(name=row.backend_key, kind=row.kind, labels=new)
                await trio.to_thread.run_sync(self.backend.update, binfo, [f"labels.{k}" for k in changed])
            now = now_ns()
            with self.db.write() as tx:
                tx.ensure_namespace(ns)
                records.set_labels(tx, ns, self.name, name, labels, now)
        return attrs.evolve(row.info(), labels=labels, updated_at=now)

    async def remove(self, ns: str, key: str) -> None:
        """Delete the record; refused (FailedPrecondition) while it has children."""
        validate_free_form(key, "snapshot key")
        async with self._locks.hold([(ns, key)], timeout=self.lock_timeout, what=f"snapshot {key!r}"):
            with self.db.write() as tx:
                if records.get_live(tx, ns, self.name, key) is None:
                    raise NotFound(f"snapshot {key!r}: not found")
                child = records.first_child(tx, ns, self.name, key)
                if child is not None:
                    raise FailedPrecondition(f"snapshot {key!r}: cannot remove a snapshot with children "
                                             f"(e.g. {child!r})")
                records.delete(tx, ns, self.name, key)
                leases.remove_from_leases(tx, ns, leases.snapshots(self.name), key)
                tx.mark_deleted()
        self.events.publish(ns, TOPIC_SNAPSHOT_REMOVE, SnapshotRemove(key=key, snapshotter=self.name))

    async def cleanup(self) -> None:
        """Reclaim backend storage no snapshot owns (snapshotter-wide)."""
        await trio.to_thread.run_sync(self.backend.cleanup)

    # -- recovery and helpers -------------------------------------------------------------

    async def recover(self) -> int:
        """Resolve rows left pending by a crash; returns how many there were."""
        with self.db.read() as conn:
            stranded = records.pending_rows(conn, self.name)
        for row in stranded:
            if row.pending.startswith(PENDING_COMMIT):
                await self._recover_commit(row)
            else:
                self._drop(row.namespace, row.key, row.backend_key, pending=row.pending)
                await self._remove_backend_quietly(row.backend_key)
            log.info("snapshotter %s: resolved interrupted %s of %r in namespace %r",
                     self.name, row.pending.split(":")[0], row.key, row.namespace)
        return len(stranded)

    async def _recover_commit(self, row: Row) -> None:
        try:
            info = await trio.to_thread.run_sync(self.backend.stat, row.backend_key)
        except NotFound:
            info = None
        if info is None or info.kind != Kind.COMMITTED:
            self._drop(row.namespace, row.key, row.backend_key, pending=row.pending)
            return
        key = row.pending[len(PENDING_COMMIT):]
        with self.db.read() as conn:
            source = records.get_live(conn, row.namespace, self.name, key)
        if source is None:  # nothing to carry over from; settle the committed name as it is
            with self.db.write() as tx:
                records.settle(tx, row.namespace, self.name, row.key, row.backend_key, row.pending, now_ns())
            return
        self._settle_commit(row.namespace, row.key, key, source,
                            _Reservation(key=row.key, bkey=row.backend_key, pending=row.pending))

    def _drop(self, ns: str, key: str, bkey: str, *, pending: str) -> None:
        """Forget a reservation (sync: safe in cleanup paths, even when cancelled)."""
        with self.db.write() as tx:
            row = records.get(tx, ns, self.name, key)
            if row is None or row.backend_key != bkey or row.pending != pending:
                return
            records.delete(tx, ns, self.name, key, bkey=bkey)
            leases.remove_from_leases(tx, ns, leases.snapshots(self.name), key)
            tx.mark_deleted()

    async def _remove_backend_quietly(self, bkey: str) -> None:
        """Undo a backend create nobody names; GC retries whatever this cannot."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.cleanup_timeout):
            try:
                await trio.to_thread.run_sync(self.backend.remove, bkey)
            except NotFound:
                pass
            except DockyardError as exc:
                log.warning("snapshotter %s: backend snapshot %r left for GC: %s", self.name, bkey, exc)

    def _sequence(self, ns: str) -> str:
        return f"snapshots/{ns}/{self.name}"

    def statistics(self) -> dict[str, Any]:
        return {"snapshotter": self.name, "locks": self._locks.statistics()}


async def open_snapshot_stores(metadata: Any, timeouts: Any = None) -> dict[str, NamespacedSnapshotter]:
    """One NamespacedSnapshotter per backend in ``metadata.snapshotters``, crash leftovers resolved."""
    stores = {}
    for name, backend in metadata.snapshotters.items():
        store = NamespacedSnapshotter(
            name=name, backend=backend, db=metadata.db, events=metadata.events,
            lock_timeout=timeouts(KEY_LOCK) if timeouts else 120.0,
            cleanup_timeout=timeouts(CLEANUP) if timeouts else 30.0,
        )
        await store.recover()
        stores[name] = store
    return stores
