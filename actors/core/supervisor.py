"""Supervisors: run children in a nursery and restart them as OTP does.

Restart policies (per child):
    permanent  always restarted, whether it crashed or returned
    transient  restarted only after a crash
    temporary  never restarted

Strategies (per supervisor):
    one_for_one   only the failed child is restarted
    rest_for_one  the failed child and every child started after it are
                  stopped (newest first) and started again in order

More than ``intensity`` restarts within ``period`` seconds means the trouble is
not local: the supervisor stops all its children and raises ``Escalation`` to
its own supervisor.  A child may itself be a Supervisor, which makes a tree.
"""

from __future__ import annotations

import collections
import enum
import logging
import math
from typing import Any, Callable

import attrs
import trio

from .actor import Actor, ActorRef, Mailbox, run_actor, single_errors

log = logging.getLogger("dockyard.supervisor")


class Restart(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"


class Escalation(Exception):
    """A supervisor gave up: its restart intensity was exceeded."""

    def __init__(self, supervisor: str, child: str, cause: BaseException | None) -> None:
        super().__init__(f"supervisor {supervisor}: restart intensity exceeded by {child}: {cause!r}")
        self.supervisor = supervisor
        self.child = child
        self.cause = cause


@attrs.frozen(kw_only=True)
class ChildSpec:
    """How to (re)start one child: ``start`` builds a fresh Actor or Supervisor."""

    name: str
    start: Callable[[], "Actor | Supervisor"]
    restart: Restart = Restart.PERMANENT
    mailbox_size: int = 64
    #: True when ``start`` builds a Supervisor (a subtree), not an Actor
    supervisor: bool = False


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    ref: ActorRef | None
    instance: Any = None
    scope: trio.CancelScope | None = None
    done: trio.Event = attrs.field(factory=trio.Event)
    restarts: int = 0
    stopping: bool = False


@attrs.frozen
class _Exit:
    child: _Child
    error: BaseException | None


class Supervisor:
    def __init__(
        self,
        name: str,
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: int = 3,
        period: float = 5.0,
        stop_timeout: float = 5.0,
        children: tuple[ChildSpec, ...] | list[ChildSpec] = (),
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.period = period
        self.stop_timeout = stop_timeout
        self._initial = list(children)
        self._children: list[_Child] = []
        self._restarts: collections.deque[float] = collections.deque()
        self._exits_send, self._exits = trio.open_memory_channel(math.inf)
        self._nursery: trio.Nursery | None = None
        self.running = False

    # -- public ------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Start the initial children in order, then supervise until cancelled."""
        try:
            with single_errors():
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self.running = True
                    for spec in self._initial:
                        await self._start(self._add(spec))
                    task_status.started()
                    await self._supervise()
        finally:
            self.running = False
            for child in self._children:
                if child.ref is not None:
                    child.ref.mailbox.close(f"supervisor {self.name} stopped")

    async def start_child(self, spec: ChildSpec) -> ActorRef | "Supervisor":
        """Add and start a child at run time (e.g. one proxy per shim)."""
        if self._nursery is None or not self.running:
            raise RuntimeError(f"supervisor {self.name} is not running")
        if any(c.spec.name == spec.name for c in self._children):
            raise ValueError(f"supervisor {self.name}: child {spec.name!r} exists")
        child = self._add(spec)
        await self._start(child)
        return child.ref if child.ref is not None else child.instance

    async def stop_child(self, name: str) -> None:
        """Stop a child for good (newest-first semantics do not apply)."""
        child = self._find(name)
        await self._stop(child)
        self._remove(child)

    def ref(self, name: str) -> ActorRef:
        child = self._find(name)
        assert child.ref is not None, f"{name} is a supervisor, not an actor"
        return child.ref

    def children(self) -> list[str]:
        return [c.spec.name for c in self._children]

    def tree(self) -> dict:
        """A dump of this subtree: names, kinds, restarts, mailbox statistics."""
        out = []
        for c in self._children:
            if isinstance(c.instance, Supervisor):
                node = c.instance.tree()
            else:
                node = {"name": c.spec.name, "kind": "actor"}
                if c.ref is not None:
                    node["mailbox"] = c.ref.statistics()
                if isinstance(c.instance, Actor):
                    node.update(c.instance.statistics())
            node["restarts"] = c.restarts
            node["restart"] = c.spec.restart.value
            out.append(node)
        return {"name": self.name, "kind": "supervisor", "strategy": self.strategy.value, "children": out}

    # -- machinery ------------------------------------------------------------------

    def _add(self, spec: ChildSpec) -> _Child:
        # Actors get a mailbox that outlives their restarts; supervisors need none.
        ref = None if spec.supervisor else ActorRef(Mailbox(spec.name, spec.mailbox_size))
        child = _Child(spec=spec, ref=ref)
        self._children.append(child)
        return child

    def _find(self, name: str) -> _Child:
        for c in self._children:
            if c.spec.name == name:
                return c
        raise KeyError(f"supervisor {self.name}: no child {name!r}")

    def _remove(self, child: _Child) -> None:
        if child in self._children:
            self._children.remove(child)
        if child.ref is not None:
            child.ref.mailbox.close(f"{child.spec.name} was stopped")

    async def _start(self, child: _Child) -> None:
        child.done = trio.Event()
        child.stopping = False
        assert self._nursery is not None
        try:
            await self._nursery.start(self._run_child, child)
        except Exception as exc:  # failed to start: treated as a crash
            log.warning("%s: child %s failed to start: %r", self.name, child.spec.name, exc)
            self._exits_send.send_nowait(_Exit(child, exc))

    async def _run_child(self, child: _Child, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        status = _StartedFlag(task_status)
        error: BaseException | None = None
        with trio.CancelScope() as scope:
            child.scope = scope
            try:
                instance = child.spec.start()
                child.instance = instance
                if isinstance(instance, Supervisor):
                    await instance.run(task_status=status)
                else:
                    assert child.ref is not None
                    instance.ref = child.ref
                    await run_actor(instance, child.ref.mailbox, task_status=status)
            except Exception as exc:
                if not status.called:
                    child.done.set()
                    raise  # nursery.start() hands it to _start, which reports it
                error = exc
        child.done.set()
        if scope.cancelled_caught and child.stopping:
            return  # stopped on purpose by this supervisor
        self._exits_send.send_nowait(_Exit(child, error))

    async def _supervise(self) -> None:
        async for exit_ in self._exits:
            child, error = exit_.child, exit_.error
            if child not in self._children:
                continue
            if error is not None:
                log.error("%s: child %s crashed: %r", self.name, child.spec.name, error,
                          exc_info=error if not isinstance(error, Escalation) else None)
            restart = child.spec.restart
            if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and error is None):
                self._remove(child)
                continue
            now = trio.current_time()
            self._restarts.append(now)
            while self._restarts and now - self._restarts[0] > self.period:
                self._restarts.popleft()
            if len(self._restarts) > self.intensity:
                await self._stop_all()
                raise Escalation(self.name, child.spec.name, error)
            child.restarts += 1
            if self.strategy is Strategy.REST_FOR_ONE:
                index = self._children.index(child)
                later = self._children[index + 1:]
                for other in reversed(later):
                    await self._stop(other)
                for c in [child, *later]:
                    await self._start(c)
            else:
                await self._start(child)

    async def _stop(self, child: _Child) -> None:
        if child.scope is None or child.done.is_set():
            return
        child.stopping = True
        child.scope.cancel()
        with trio.move_on_after(self.stop_timeout):
            await child.done.wait()

    async def _stop_all(self) -> None:
        for child in reversed(self._children):
            await self._stop(child)
        for child in self._children:
            if child.ref is not None:
                child.ref.mailbox.close(f"supervisor {self.name} escalated")


class _StartedFlag:
    """Wraps a task_status to remember whether the child reported 'started'."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: Any = None) -> None:
        self.called = True
        self._inner.started(value)
