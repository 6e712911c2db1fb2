"""Supervision: crash → restart, intensity → escalation, callers of a crashed actor."""

import attrs
import pytest
import trio
import trio.testing

from actors.core.actor import collapse
from actors.core import Actor, ChildSpec, Escalation, Restart, Strategy, Supervisor, handles
from wire import errdefs


@attrs.frozen
class Ping:
    value: int = 0


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Refuse:
    pass


@attrs.frozen
class Hang:
    pass


class Counter(Actor):
    starts: list = []

    def __init__(self, log: list, name: str = "counter") -> None:
        self.count = 0
        self.log = log
        self.name = name

    async def on_start(self) -> None:
        self.log.append(("start", self.name))

    @handles(Ping)
    async def ping(self, msg: Ping) -> int:
        self.count += msg.value
        return self.count

    @handles(Crash)
    async def crash(self, msg: Crash) -> None:
        raise RuntimeError("boom")

    @handles(Refuse)
    async def refuse(self, msg: Refuse) -> None:
        raise errdefs.FailedPrecondition("counter: refused on purpose")

    @handles(Hang)
    async def hang(self, msg: Hang) -> None:
        await trio.sleep_forever()


def spec(log, name="counter", **kw):
    return ChildSpec(name=name, start=lambda: Counter(log, name), **kw)


async def test_ask_reply_and_typed_error_keeps_actor():
    log = []
    sup = Supervisor("root", children=[spec(log)])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        ref = sup.ref("counter")
        assert await ref.ask(Ping(2), timeout=1) == 2
        with pytest.raises(errdefs.FailedPrecondition):
            await ref.ask(Refuse(), timeout=1)
        assert await ref.ask(Ping(3), timeout=1) == 5  # same instance, state kept
        with pytest.raises(errdefs.NotImplemented_):
            await ref.ask(object(), timeout=1)
        n.cancel_scope.cancel()
    assert log == [("start", "counter")]


async def test_crash_restarts_and_caller_gets_unavailable():
    log = []
    sup = Supervisor("root", children=[spec(log)])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        ref = sup.ref("counter")
        await ref.ask(Ping(5), timeout=1)
        with pytest.raises(errdefs.Unavailable, match="crashed"):
            await ref.ask(Crash(), timeout=1)
        # same ref, fresh state after the restart
        assert await ref.ask(Ping(1), timeout=1) == 1
        assert log == [("start", "counter"), ("start", "counter")]
        n.cancel_scope.cancel()


async def test_ask_deadline(autojump_clock):
    log = []
    sup = Supervisor("root", children=[spec(log)])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        with pytest.raises(errdefs.DeadlineExceeded, match="Hang"):
            await sup.ref("counter").ask(Hang(), timeout=2)
        n.cancel_scope.cancel()


async def test_intensity_exceeded_escalates_and_fails_queued_callers():
    log = []
    sup = Supervisor("root", intensity=2, period=60, children=[spec(log)])
    escalation = None
    try:
        async with trio.open_nursery() as n:
            await n.start(sup.run)
            ref = sup.ref("counter")
            for _ in range(3):
                with pytest.raises(errdefs.Unavailable):
                    await ref.ask(Crash(), timeout=1)
            await trio.sleep_forever()
    except BaseExceptionGroup as group:
        escalation = collapse(group)
    assert isinstance(escalation, Escalation)
    assert escalation.child == "counter"
    with pytest.raises(errdefs.Unavailable):
        await ref.ask(Ping(1), timeout=1)
    assert len([e for e in log if e[0] == "start"]) == 3


async def test_nested_supervisor_escalation_restarts_subtree():
    log = []

    def inner():
        return Supervisor("inner", intensity=0, period=60, children=[spec(log, "a")])

    root = Supervisor("root", intensity=5, children=[ChildSpec(name="inner", start=inner, supervisor=True)])
    async with trio.open_nursery() as n:
        await n.start(root.run)
        inner_sup = root._find("inner").instance
        ref = inner_sup.ref("a")
        with pytest.raises(errdefs.Unavailable):
            await ref.ask(Crash(), timeout=1)
        # the inner supervisor escalated; root restarted it with a fresh child
        await trio.testing.wait_all_tasks_blocked()
        new_inner = root._find("inner").instance
        assert new_inner is not inner_sup
        assert await new_inner.ref("a").ask(Ping(4), timeout=1) == 4
        n.cancel_scope.cancel()


async def test_rest_for_one_restarts_later_children_in_order():
    log = []
    sup = Supervisor("root", strategy=Strategy.REST_FOR_ONE,
                     children=[spec(log, "a"), spec(log, "b"), spec(log, "c")])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        await sup.ref("c").ask(Ping(7), timeout=1)
        await sup.ref("a").ask(Ping(7), timeout=1)
        log.clear()
        with pytest.raises(errdefs.Unavailable):
            await sup.ref("b").ask(Crash(), timeout=1)
        await trio.testing.wait_all_tasks_blocked()
        assert log == [("start", "b"), ("start", "c")]
        assert await sup.ref("a").ask(Ping(0), timeout=1) == 7  # untouched
        assert await sup.ref("c").ask(Ping(0), timeout=1) == 0  # restarted
        n.cancel_scope.cancel()


@pytest.mark.parametrize("policy,crash,restarted", [
    (Restart.PERMANENT, True, True),
    (Restart.TRANSIENT, True, True),
    (Restart.TEMPORARY, True, False),
])
async def test_restart_policies(policy, crash, restarted):
    log = []
    sup = Supervisor("root", children=[spec(log, restart=policy)])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        ref = sup.ref("counter")
        with pytest.raises(errdefs.Unavailable):
            await ref.ask(Crash(), timeout=1)
        await trio.testing.wait_all_tasks_blocked()
        if restarted:
            assert await ref.ask(Ping(1), timeout=1) == 1
        else:
            assert sup.children() == []
            with pytest.raises(errdefs.Unavailable):
                await ref.ask(Ping(1), timeout=1)
        n.cancel_scope.cancel()


async def test_bounded_mailbox_pushes_back(autojump_clock):
    log = []
    sup = Supervisor("root", children=[spec(log, mailbox_size=1)])
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        ref = sup.ref("counter")
        n.start_soon(lambda: ref.tell(Hang(), timeout=1))
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait(Ping(1))  # fills the one slot
        with pytest.raises(errdefs.ResourceExhausted):
            ref.tell_nowait(Ping(1))
        with pytest.raises(errdefs.ResourceExhausted):
            await ref.tell(Ping(1), timeout=0.5)
        n.cancel_scope.cancel()


async def test_dynamic_child_and_tree_dump():
    log = []
    sup = Supervisor("root")
    async with trio.open_nursery() as n:
        await n.start(sup.run)
        ref = await sup.start_child(spec(log, "shim-1", restart=Restart.TEMPORARY))
        assert await ref.ask(Ping(1), timeout=1) == 1
        tree = sup.tree()
        assert tree["children"][0]["name"] == "shim-1"
        assert tree["children"][0]["mailbox"]["asks"] == 1
        await sup.stop_child("shim-1")
        assert sup.children() == []
        n.cancel_scope.cancel()
