"""The scheduler's rules (containerd's), under Trio's autojump clock with a fake collection."""

from __future__ import annotations

import contextlib

import pytest
import trio
import trio.testing

from actors.core import ChildSpec, Supervisor
from actors.gc.plugin import start
from actors.gc.scheduler import GCScheduler, GetStats, Pending, SchedulerConfig
from wire import errdefs
from tests.gc.gc_helpers import add_content, fake_digest


class FakeRun:
    def __init__(self, duration: float = 0.0, fail: bool = False) -> None:
        self.times: list[float] = []
        self.duration = duration
        self.fail = fail

    async def __call__(self):
        self.times.append(trio.current_time())
        await trio.sleep(self.duration)
        if self.fail:
            raise RuntimeError("disk on fire")
        return f"report {len(self.times)}"


@contextlib.asynccontextmanager
async def scheduler(run, **config):
    pending = Pending()
    limits = SchedulerConfig(**config).checked()
    async with trio.open_nursery() as nursery:
        sup = Supervisor("test")
        await nursery.start(sup.run)
        ref = await sup.start_child(ChildSpec(name="gc", start=lambda: GCScheduler(run, pending, limits)))
        yield pending, ref
        nursery.cancel_scope.cancel()


async def test_first_run_after_startup_delay_then_idle_ticks_do_nothing(autojump_clock):
    run = FakeRun()
    async with scheduler(run, startup_delay="100ms"):
        t0 = trio.current_time()
        await trio.sleep(30)
    assert [round(t - t0, 3) for t in run.times] == [0.1]


async def test_deletion_makes_the_next_tick_run(autojump_clock):
    run = FakeRun(duration=0.01)  # avg 10 ms: interval = 0.01/0.02 - 0.01 = 0.49 s
    async with scheduler(run, startup_delay="100ms") as (pending, _):
        t0 = trio.current_time()
        await trio.sleep(2.0)
        pending.note_write(deleted=True)
        await trio.sleep(5)
    assert len(run.times) == 2
    # ticks at 0.11 + 0.49k: the first one after the deletion at 2.0 is 2.07
    assert run.times[1] - t0 == pytest.approx(0.11 + 4 * 0.49, abs=1e-6)


async def test_mutations_below_the_threshold_do_not_run_then_reaching_it_does(autojump_clock):
    run = FakeRun()
    async with scheduler(run, startup_delay="100ms", mutation_threshold=10) as (pending, _):
        await trio.sleep(1)
        for _ in range(9):
            pending.note_write(deleted=False)
        await trio.sleep(3)
        assert len(run.times) == 1
        pending.note_write(deleted=False)
        await trio.sleep(1)
    assert len(run.times) == 2


async def test_trigger_runs_after_the_schedule_delay(autojump_clock):
    run = FakeRun(duration=0.5)  # a long interval: 24.5 s
    async with scheduler(run, startup_delay="100ms", schedule_delay="50ms") as (pending, _):
        await trio.sleep(1)
        t = trio.current_time()
        pending.trigger()
        await trio.sleep(1)
    assert len(run.times) == 2 and run.times[1] - t == pytest.approx(0.05)


async def test_deletion_threshold_schedules_a_run_soon(autojump_clock):
    run = FakeRun(duration=0.5)
    async with scheduler(run, startup_delay="100ms", deletion_threshold=3) as (pending, _):
        await trio.sleep(1)
        pending.note_write(deleted=True)
        pending.note_write(deleted=True)
        await trio.sleep(1)
        assert len(run.times) == 1
        t = trio.current_time()
        pending.note_write(deleted=True)
        await trio.sleep(1)
    assert len(run.times) == 2 and run.times[1] == pytest.approx(t)


async def test_no_startup_delay_runs_only_when_asked(autojump_clock):
    run = FakeRun()
    async with scheduler(run, startup_delay="0s") as (pending, _):
        await trio.sleep(10)
        assert run.times == []
        pending.note_write(deleted=True)  # nothing scheduled yet: a deletion schedules at once
        await trio.sleep(0.001)
    assert len(run.times) == 1


async def test_a_waiter_that_joins_during_a_run_waits_for_the_next_run(autojump_clock):
    run = FakeRun(duration=1.0)
    async with scheduler(run, startup_delay="100ms") as (pending, _):
        await trio.sleep(0.5)  # the first run is in progress (0.1 … 1.1)
        report = await pending.add_waiter().wait(timeout=60)
        assert report == "report 2"
        assert len(run.times) == 2 and run.times[1] >= 1.1 + run.times[0] - 0.1


async def test_failed_run_fails_its_waiters_and_retries_later(autojump_clock):
    run = FakeRun(fail=True)
    async with scheduler(run, startup_delay="0s") as (pending, ref):
        with pytest.raises(errdefs.Internal, match="disk on fire"):
            await pending.add_waiter().wait(timeout=60)
        t = trio.current_time()
        pending.note_write(deleted=True)  # makes the retry tick run
        await trio.sleep(3)
        stats = await ref.ask(GetStats(), timeout=5)
    assert stats["failures"] == 2 and "disk on fire" in stats["last_error"]
    assert run.times[1] - t == pytest.approx(2.0)  # interval (1 s before any success) + 1 s


async def test_wait_has_a_deadline(autojump_clock):
    run = FakeRun()
    async with scheduler(run, startup_delay="0s") as (pending, _):
        waiter = pending.add_waiter()
        pending.take_waiters()  # nobody will ever resolve it
        with pytest.raises(errdefs.DeadlineExceeded):
            await waiter.wait(timeout=5)


def test_config_is_clamped_and_durations_checked():
    limits = SchedulerConfig(pause_threshold=0.9, mutation_threshold=-5, schedule_delay="2s").checked()
    assert limits.pause_threshold == 0.5 and limits.mutation_threshold == 0 and limits.schedule_delay == 2.0
    with pytest.raises(errdefs.InvalidArgument):
        SchedulerConfig(startup_delay="soon").checked()


async def test_real_collector_its_own_sweep_is_not_a_mutation(metadata, db):
    add_content(db, "default", fake_digest("a"))
    async with trio.open_nursery() as nursery:
        sup = Supervisor("test")
        await nursery.start(sup.run)
        gc = await start(metadata, SchedulerConfig(startup_delay="0s", mutation_threshold=1), sup.start_child,
                         wait_timeout=30, ask_timeout=5)
        await trio.testing.wait_all_tasks_blocked()
        gc.pending.drain()  # the setup writes above are not what we measure
        report = await gc.schedule_and_wait()
        assert [r.id for r in report.removed] == [fake_digest("a")]
        await trio.testing.wait_all_tasks_blocked()
        stats = await gc.stats()
        assert stats["pending"]["mutations"] == 0 and stats["collections"] == 1
        add_content(db, "default", fake_digest("b"))  # somebody else's write does count
        await trio.testing.wait_all_tasks_blocked()
        assert (await gc.stats())["pending"]["mutations"] == 1
        nursery.cancel_scope.cancel()
