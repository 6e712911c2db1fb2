"""One collection: snapshot, mark (thread), sweep (short write transactions), events, backends (thread).

    report = await Collector(metadata).collect()
    report = await Collector(metadata).collect(dry_run=True)   # what would go; nothing changes
    answer = await Collector(metadata).explain("default", "content", "sha256:…")

Metadata is deleted first, in transactions that each leave it whole, so a crash at any point
leaves meta.db consistent: the backend objects it no longer names are found
and deleted by the next run.  Runs must not overlap (the scheduler serializes
them); dry runs and explains only read and may run at any time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import attrs
import trio

from wire import errdefs, events as wire_events
from wire.identifiers import validate_namespace

from . import backend, changes
from .graph import load
from .labels import now_ns
from .mark import Marking, mark
from .nodes import CONTENT, IMAGE, INGEST, KINDS, LEASE, SNAPSHOT, Node, split_snapshot_key
from .sweep import Sweep

log = logging.getLogger("dockyard.gc")

@attrs.frozen(kw_only=True)
class Removed:
    kind: str
    namespace: str
    id: str


@attrs.frozen(kw_only=True)
class GCReport:
    """What a run removed (or, dry, would remove).  Times in seconds."""

    removed: list[Removed] = attrs.Factory(list)  # meta.db records
    backend: list[Removed] = attrs.Factory(list)  # blob / ingest / snapshot (id <snapshotter>/<backend key>)
    duration: float = 0.0  # the whole run
    mark: float = 0.0  # snapshot + marking, outside the lock
    pause: float = 0.0  # the sweep's longest write transaction
    dry_run: bool = False

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in self.removed:
            out[item.kind] = out.get(item.kind, 0) + 1
        for item in self.backend:
            key = f"backend {item.kind}"
            out[key] = out.get(key, 0) + 1
        return out


@attrs.frozen(kw_only=True)
class Step:
    kind: str
    namespace: str
    id: str
    via: str  # how this step was reached from the one before (or why the first is a root)


@attrs.frozen(kw_only=True)
class Explanation:
    kind: str
    namespace: str
    id: str
    kept: bool
    chain: list[Step] = attrs.Factory(list)
    reason: str = ""


def _removed(node: Node) -> Removed:
    return Removed(kind=node.kind, namespace=node.namespace, id=node.key)


def _mark_snapshot(reader) -> Marking:
    try:
        return mark(load(reader, now_ns()))
    finally:
        reader.close()


@attrs.define(eq=False)
class Collector:
    metadata: Any  # actors.metadata.plugin.Metadata: db, events, content, snapshotters
    #: test hook, called (in the run's task) after the metadata commit and before backend deletion
    after_commit: Callable[[], None] | None = None
    #: the thread whose write transaction is this collector's sweep (its DB notification is not a mutation)
    sweeping_thread: int | None = None
    _log_installed: bool = False

    @property
    def db(self):
        return self.metadata.db

    # -- a real run -------------------------------------------------------------

    async def collect(self, dry_run: bool = False) -> GCReport:
        if dry_run:
            return await self._dry_run()
        if not self._log_installed:
            changes.install(self.db)
            self._log_installed = True
        started = time.perf_counter()
        started_ns = now_ns()
        reader = changes.begin(self.db)
        try:
            marking = await trio.to_thread.run_sync(_mark_snapshot, reader)
            marked_at = time.perf_counter()
            removed, pause = await self._sweep(marking)
        except BaseException:
            changes.stop(self.db)
            raise
        if self.after_commit is not None:
            self.after_commit()
        gone = await trio.to_thread.run_sync(self._clean_backends, started_ns)
        report = GCReport(removed=[_removed(n) for n in removed], backend=gone,
                          duration=time.perf_counter() - started, mark=marked_at - started, pause=pause)
        if report.removed or report.backend:
            log.info("gc: removed %s in %.1f ms (pause %.1f ms)", report.counts(), report.duration * 1e3,
                     report.pause * 1e3)
        return report

    async def _sweep(self, marking: Marking) -> tuple[list[Node], float]:
        """Delete chunk by chunk; other tasks run between the transactions.  Returns what went
        and the longest transaction (the pause a request could have waited for)."""
        run = Sweep(marking, now_ns())
        if not run.chunks:
            changes.stop(self.db)
            return [], 0.0
        removed: list[Node] = []
        pause = 0.0
        for index in range(len(run.chunks)):
            started = time.perf_counter()
            self.sweeping_thread = threading.get_ident()
            try:
                with self.db.write() as tx:
                    gone = run.step(tx, index)
            finally:
                self.sweeping_thread = None
            pause = max(pause, time.perf_counter() - started)
            self._publish(gone)
            removed += gone
            await trio.sleep(0)
        return removed, pause

    def _publish(self, removed: list[Node]) -> None:
        events = getattr(self.metadata, "events", None)
        if events is None:
            return
        for node in removed:
            if node.kind == CONTENT:
                events.publish(node.namespace, wire_events.TOPIC_CONTENT_DELETE,
                               wire_events.ContentDelete(digest=node.key))
            elif node.kind == IMAGE:
                events.publish(node.namespace, wire_events.TOPIC_IMAGE_DELETE, wire_events.ImageDelete(name=node.key))
            elif node.kind == SNAPSHOT:
                snapshotter, key = split_snapshot_key(node.key)
                events.publish(node.namespace, wire_events.TOPIC_SNAPSHOT_REMOVE,
                               wire_events.SnapshotRemove(key=key, snapshotter=snapshotter))

    def _clean_backends(self, started_ns: int) -> list[Removed]:
        """Blocking: delete backend objects no record names (errors logged, retried next run)."""
        gone: list[Removed] = []
        store = getattr(self.metadata, "content", None)
        if store is not None:
            try:
                gone += [Removed(kind="blob", namespace="", id=d)
                         for d in backend.clean_blobs(self.db, store, started_ns)]
                gone += [Removed(kind="ingest", namespace="", id=r)
                         for r in backend.clean_ingests(self.db, store, started_ns)]
            except (OSError, errdefs.DockyardError) as exc:
                log.warning("gc: content cleanup failed (the next run retries): %s", exc)
        for name, snapshotter in sorted((getattr(self.metadata, "snapshotters", None) or {}).items()):
            try:
                gone += [Removed(kind="snapshot", namespace="", id=f"{name}/{k}")
                         for k in backend.clean_snapshots(self.db, name, snapshotter, started_ns)]
            except (OSError, errdefs.DockyardError) as exc:
                log.warning("gc: snapshotter %s cleanup failed (the next run retries): %s", name, exc)
        return gone

    # -- read-only ----------------------------------------------------------------

    async def marking(self) -> Marking:
        """Mark a fresh snapshot (no lock, no change log)."""
        reader = self.db.open_reader()
        reader.execute("BEGIN")
        return await trio.to_thread.run_sync(_mark_snapshot, reader)

    async def _dry_run(self) -> GCReport:
        started = time.perf_counter()
        marking = await self.marking()
        plan = await trio.to_thread.run_sync(self._backend_plan, marking)
        elapsed = time.perf_counter() - started
        return GCReport(removed=[_removed(n) for n in marking.unmarked()], backend=plan, duration=elapsed,
                        mark=elapsed, dry_run=True)

    def _backend_plan(self, marking: Marking) -> list[Removed]:
        """Backend objects no *marked* record names: what the backend phase would delete."""
        records = marking.graph.records
        kept = [(n, records[n]) for n in marking.marked if n in records]
        plan: list[Removed] = []
        store = getattr(self.metadata, "content", None)
        if store is not None:
            blobs = {n.key for n, _ in kept if n.kind == CONTENT}
            blobs |= {r.parent.key for n, r in kept if n.kind == INGEST and r.parent is not None}
            plan += [Removed(kind="blob", namespace="", id=d)
                     for d in backend.orphans(blobs, (b.digest for b in store.list()))]
            refs = {r.backend for n, r in kept if n.kind == INGEST}
            plan += [Removed(kind="ingest", namespace="", id=ref)
                     for ref in backend.orphans(refs, (s.ref for s in store.statuses()))]
        for name, snapshotter in sorted((getattr(self.metadata, "snapshotters", None) or {}).items()):
            infos: list = []
            snapshotter.walk(infos.append)
            keys = {r.backend for n, r in kept if n.kind == SNAPSHOT and split_snapshot_key(n.key)[0] == name}
            plan += [Removed(kind="snapshot", namespace="", id=f"{name}/{k}")
                     for k in backend.orphans(keys, (i.name for i in infos))]
        return plan

    async def explain(self, namespace: str, kind: str, id: str) -> Explanation:
        """The chain of references from a root to the object, or why nothing keeps it."""
        validate_namespace(namespace)
        if kind not in KINDS:
            raise errdefs.InvalidArgument(f"gc explain: unknown kind {kind!r} (want one of {', '.join(KINDS)})")
        if not isinstance(id, str) or not id:
            raise errdefs.InvalidArgument(f"gc explain: {kind} id must not be empty")
        if kind == SNAPSHOT:
            try:
                split_snapshot_key(id)
            except ValueError:
                raise errdefs.InvalidArgument(f"snapshot {id!r}: want <snapshotter>/<key>") from None
        node = Node(kind, namespace, id)
        marking = await self.marking()
        record = marking.graph.records.get(node)
        if record is None:
            raise errdefs.NotFound(f"{kind} {id!r}: not found in namespace {namespace}")
        chain = [Step(kind=n.kind, namespace=n.namespace, id=n.key, via=how) for n, how in marking.chain(node)]
        if chain:
            return Explanation(kind=kind, namespace=namespace, id=id, kept=True, chain=chain,
                               reason=chain[0].via)
        if kind == LEASE:
            reason = "nothing keeps it: the lease has expired (containerd.io/gc.expire is in the past)"
        elif kind == IMAGE and record.expired:
            reason = "nothing keeps it: the image has expired (containerd.io/gc.expire is in the past)"
        else:
            reason = "nothing keeps it: the next collection removes it"
        return Explanation(kind=kind, namespace=namespace, id=id, kept=False, reason=reason)
