"""The GC plugin ``io.dockyard.gc.v1.scheduler``: the collector, its scheduler actor, the DB listener.

    gc = ic.plugins.get_single(GC)
    gc.trigger()                      # schedule a run soon (never waits)
    report = await gc.schedule_and_wait()
    report = await gc.collect(dry_run=True)
    answer = await gc.explain(ns, "content", digest)
"""

from __future__ import annotations

import logging
import threading

import attrs
import trio

from actors.core import ChildSpec
from actors.plugin import GC, METADATA, InitContext, plugin
from actors.timeouts import ACTOR_ASK, register

from .collector import Collector, Explanation, GCReport
from .scheduler import GCScheduler, GetStats, Pending, SchedulerConfig

log = logging.getLogger("dockyard.gc")

WAIT = register("io.dockyard.timeout.gc.wait", 120.0)  # schedule_and_wait / Collect: until the run ends


@attrs.define(eq=False)
class GarbageCollector:
    collector: Collector
    pending: Pending
    config: SchedulerConfig
    wait_timeout: float = 120.0
    ask_timeout: float = 10.0
    scheduler: object = None  # ActorRef of GCScheduler
    _token: trio.lowlevel.TrioToken | None = None

    def on_write(self, deleted: bool) -> None:
        """meta.db listener: called after every committed write, from any thread."""
        token = self._token
        if token is None or self.collector.sweeping_thread == threading.get_ident():
            return  # the collector's own sweep is not a mutation
        try:
            token.run_sync_soon(self.pending.note_write, deleted)
        except trio.RunFinishedError:
            pass

    def trigger(self) -> None:
        """Schedule a collection after ``schedule_delay``; never waits (Trio thread only)."""
        self.pending.trigger()

    async def schedule_and_wait(self, timeout: float | None = None) -> GCReport:
        """Schedule a run and return its report once a run that started after this call ends."""
        waiter = self.pending.add_waiter()
        return await waiter.wait(self.wait_timeout if timeout is None else timeout)

    async def collect(self, dry_run: bool = False, timeout: float | None = None) -> GCReport:
        if dry_run:
            return await self.collector.collect(dry_run=True)
        return await self.schedule_and_wait(timeout)

    async def explain(self, namespace: str, kind: str, id: str) -> Explanation:
        return await self.collector.explain(namespace, kind, id)

    async def stats(self) -> dict:
        return await self.scheduler.ask(GetStats(), timeout=self.ask_timeout)

    async def _run(self) -> GCReport:
        return await self.collector.collect()


async def start(metadata, config: SchedulerConfig, spawn, *, wait_timeout: float, ask_timeout: float,
                after_commit=None) -> GarbageCollector:
    pending = Pending()
    collector = Collector(metadata, after_commit=after_commit)
    gc = GarbageCollector(collector=collector, pending=pending, config=config, wait_timeout=wait_timeout,
                          ask_timeout=ask_timeout)
    limits = config.checked()
    gc._token = trio.lowlevel.current_trio_token()
    metadata.db.add_listener(gc.on_write)
    gc.scheduler = await spawn(ChildSpec(name="gc-scheduler",
                                         start=lambda: GCScheduler(gc._run, pending, limits)))
    return gc


@plugin(GC, "scheduler", requires=(METADATA,), config=SchedulerConfig)
async def init_gc(ic: InitContext) -> GarbageCollector:
    config = ic.config or SchedulerConfig()
    config.checked()  # bad durations fail the plugin at start-up
    gc = await start(ic.plugins.get_single(METADATA), config, ic.spawn,
                     wait_timeout=ic.timeouts(WAIT), ask_timeout=ic.timeouts(ACTOR_ASK))
    limits = config.checked()
    for key, value in attrs.asdict(limits).items():
        ic.export(key, str(value))
    return gc
