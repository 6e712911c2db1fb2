"""When collections run: containerd's GC scheduler as an actor (reference §13).

    pause_threshold     0.02   at most this share of time spent collecting (0 … 0.5)
    deletion_threshold  0      this many deletions schedule a run (0: any deletion makes the next tick run)
    mutation_threshold  100    this many writes make the next tick run (0: never)
    schedule_delay      "0ms"  delay of a triggered run
    startup_delay       "100ms" first run after start

The first run comes ``startup_delay`` after start; then a tick every
``interval = avg/pause_threshold - avg`` (avg of the runs' metadata phase, mark
plus sweep, as containerd's ``Elapsed``; at least 5 ms,
so at least 245 ms; 1 s before any run).  A tick runs only if triggered, a
deletion happened, or mutations reached the threshold; otherwise it waits
another interval.  ``trigger()`` and reaching a non-zero deletion threshold
schedule a run after ``schedule_delay``.  A failed run retries after the
interval plus one second.

Differences from containerd: the sweep's own write does not count as a
mutation, and writes made by others *during* a run count towards the next one
(containerd drops every notification older than the end of the last run).
"""

from __future__ import annotations

import logging
import math
from typing import Awaitable, Callable

import attrs
import trio

from actors.core import Actor, handles
from actors.timeouts import parse_duration
from wire import errdefs

log = logging.getLogger("dockyard.gc")

MINIMUM_GC_TIME = 0.005
FIRST_INTERVAL = 1.0


@attrs.frozen(kw_only=True)
class SchedulerConfig:
    """``[plugins."io.dockyard.gc.v1.scheduler"]``"""

    pause_threshold: float = 0.02
    deletion_threshold: int = 0
    mutation_threshold: int = 100
    schedule_delay: str = "0ms"
    startup_delay: str = "100ms"

    def checked(self) -> "Limits":
        return Limits(
            pause_threshold=min(max(float(self.pause_threshold), 0.0), 0.5),
            deletion_threshold=max(int(self.deletion_threshold), 0),
            mutation_threshold=max(int(self.mutation_threshold), 0),
            schedule_delay=parse_duration(self.schedule_delay, "gc schedule_delay"),
            startup_delay=parse_duration(self.startup_delay, "gc startup_delay"),
        )


@attrs.frozen(kw_only=True)
class Limits:
    pause_threshold: float
    deletion_threshold: int
    mutation_threshold: int
    schedule_delay: float
    startup_delay: float


@attrs.define(eq=False)
class Waiter:
    """Resolved when the next run (one that starts after the waiter joined) ends."""

    done: trio.Event = attrs.Factory(trio.Event)
    report: object = None
    error: errdefs.DockyardError | None = None

    async def wait(self, timeout: float):
        with trio.move_on_after(timeout):
            await self.done.wait()
        if not self.done.is_set():
            raise errdefs.DeadlineExceeded(f"gc: no collection finished within {timeout:g}s")
        if self.error is not None:
            raise self.error
        return self.report


@attrs.define(eq=False)
class Pending:
    """What happened since the scheduler last looked: written from the Trio thread only.

    Survives a restart of the scheduler actor, so no trigger or waiter is lost.
    """

    triggers: int = 0
    deletions: int = 0
    mutations: int = 0
    waiters: list[Waiter] = attrs.Factory(list)
    muted: bool = False  # while the collector's own sweep commits
    _lot: trio.lowlevel.ParkingLot = attrs.Factory(trio.lowlevel.ParkingLot)

    def note_write(self, deleted: bool) -> None:
        if self.muted:
            return
        self.mutations += 1
        if deleted:
            self.deletions += 1
        self._lot.unpark_all()

    def trigger(self) -> None:
        self.triggers += 1
        self._lot.unpark_all()

    def add_waiter(self) -> Waiter:
        waiter = Waiter()
        self.waiters.append(waiter)
        self.trigger()
        return waiter

    def drain(self) -> tuple[int, int, int]:
        counts = (self.triggers, self.deletions, self.mutations)
        self.triggers = self.deletions = self.mutations = 0
        return counts

    async def changed(self) -> None:
        """Return once something is pending (at once if something already is)."""
        if not (self.triggers or self.deletions or self.mutations):
            await self._lot.park()

    def take_waiters(self) -> list[Waiter]:
        waiters, self.waiters = self.waiters, []
        return waiters


@attrs.frozen(kw_only=True)
class GetStats:
    pass


class GCScheduler(Actor):
    """Runs ``run()`` (one collection) when the rules above say so; never two at once."""

    def __init__(self, run: Callable[[], Awaitable[object]], pending: Pending, limits: Limits) -> None:
        self.run = run
        self.pending = pending
        self.limits = limits
        self.triggered = False
        self.deletions = 0
        self.mutations = 0
        self.next_at: float | None = None
        self.interval = FIRST_INTERVAL
        self.collections = 0
        self.failures = 0
        self.time_sum = 0.0
        self.last_end: float | None = None
        self.last_report: object = None
        self.last_error: str = ""
        self.running = False

    async def on_start(self) -> None:
        if self.limits.startup_delay > 0:
            self.next_at = trio.current_time() + self.limits.startup_delay
        self.nursery.start_soon(self._loop)

    def _schedule(self, delay: float) -> None:
        self.next_at = trio.current_time() + delay

    def _absorb(self) -> None:
        """Fold pending notifications into the counters; maybe schedule a run soon."""
        triggers, deletions, mutations = self.pending.drain()
        if not (triggers or deletions or mutations):
            return
        self.triggered = self.triggered or triggers > 0
        self.deletions += deletions
        self.mutations += mutations
        lim = self.limits
        soon = (self.triggered
                or (lim.deletion_threshold > 0 and self.deletions >= lim.deletion_threshold)
                or (self.next_at is None and ((lim.deletion_threshold == 0 and self.deletions > 0)
                                              or (lim.mutation_threshold > 0
                                                  and self.mutations >= lim.mutation_threshold))))
        if soon:
            at = trio.current_time() + lim.schedule_delay
            if self.next_at is None or self.next_at > at:
                self.next_at = at

    async def _loop(self) -> None:
        while True:
            self._absorb()
            if self.next_at is None or trio.current_time() < self.next_at:
                with trio.move_on_at(self.next_at if self.next_at is not None else math.inf):
                    await self.pending.changed()
                continue
            lim = self.limits
            if (not self.triggered and self.last_end is not None and self.deletions == 0
                    and (lim.mutation_threshold == 0 or self.mutations < lim.mutation_threshold)):
                self._schedule(self.interval)
                continue
            await self._collect()

    async def _collect(self) -> None:
        waiters = self.pending.take_waiters()
        self.triggered = False
        self.deletions = self.mutations = 0
        self.running = True
        started = trio.current_time()
        try:
            report = await self.run()
        except Exception as exc:  # noqa: BLE001 - a failed run is retried, never fatal
            self.failures += 1
            self.last_error = str(exc)
            log.error("gc: collection failed (retry in %.2fs): %r", self.interval + 1.0, exc)
            error = exc if isinstance(exc, errdefs.DockyardError) else errdefs.Internal(f"gc failed: {exc}")
            for waiter in waiters:
                waiter.error = error
                waiter.done.set()
            self._schedule(self.interval + 1.0)
        else:
            # like containerd's stats.Elapsed(): the metadata phase, not the backend deletions after it
            elapsed = getattr(report, "mark", None)
            if elapsed is None:
                elapsed = trio.current_time() - started
            else:
                elapsed += getattr(report, "pause", 0.0)
            self.collections += 1
            self.time_sum += elapsed
            self.last_report = report
            self.last_error = ""
            if self.limits.pause_threshold > 0:
                avg = max(self.time_sum / self.collections, MINIMUM_GC_TIME)
                self.interval = avg / self.limits.pause_threshold - avg
            self._schedule(self.interval)
            for waiter in waiters:
                waiter.report = report
                waiter.done.set()
        finally:
            self.running = False
            self.last_end = trio.current_time()

    @handles(GetStats)
    async def stats(self, _msg: GetStats) -> dict:
        return self.statistics()

    def statistics(self) -> dict:
        now = trio.current_time()
        return {
            "collections": self.collections,
            "failures": self.failures,
            "running": self.running,
            "average_duration": self.time_sum / self.collections if self.collections else 0.0,
            "interval": self.interval,
            "next_in": None if self.next_at is None else max(0.0, self.next_at - now),
            "pending": {"triggered": self.triggered or self.pending.triggers > 0,
                        "deletions": self.deletions + self.pending.deletions,
                        "mutations": self.mutations + self.pending.mutations,
                        "waiters": len(self.pending.waiters)},
            "last": _summary(self.last_report),
            "last_error": self.last_error,
            "config": attrs.asdict(self.limits),
        }


def _summary(report) -> dict | None:
    if report is None:
        return None
    return {"counts": report.counts(), "duration": report.duration, "mark": report.mark, "pause": report.pause}
