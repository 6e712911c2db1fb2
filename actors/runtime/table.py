"""The task table actor: which tasks exist, which shim serves each, which shims are live.

Every change to the table is one message handled in one short turn; nothing
slow happens here (no shim call, no runc, no file tree).  The flows that do
slow work (``manager.TaskManager``) reserve, finish and forget entries through
these messages and re-check the table when their slow step returns.

Task states: ``creating`` (reserved by an in-flight Create; a retried Create
joins it), ``live`` (a shim serves it), ``dead`` (its shim died: a tombstone
that reports ``stopped`` with the exit until Delete).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import attrs
import trio

from actors.core import Actor, ChildSpec, Restart, Supervisor, handles
from wire import errdefs

from .bundle import Bundle
from .shim import Shim, ShimProxy

CREATING, LIVE, DEAD = "creating", "live", "dead"


@attrs.define(eq=False)
class Task:
    namespace: str
    id: str
    bundle: Bundle
    runtime: str = ""
    state: str = CREATING
    shim: Shim | None = None
    pid: int = 0
    created: trio.Event = attrs.Factory(trio.Event)
    error: BaseException | None = None
    exit: dict | None = None  # tombstone: {pid, exit_status, exited_at}
    deleting: bool = False
    io: dict = attrs.Factory(dict)  # stdin/stdout/stderr/terminal, kept for tombstones
    buried: trio.Event = attrs.Factory(trio.Event)  # set when a dead shim's clean-up recorded the exit


# -- messages --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Reserve:
    namespace: str
    id: str
    bundle: Bundle
    runtime: str


@attrs.frozen(kw_only=True)
class Finish:
    task: Task
    error: BaseException | None = None


@attrs.frozen(kw_only=True)
class Lookup:
    namespace: str
    id: str


@attrs.frozen(kw_only=True)
class ListTasks:
    namespace: str | None = None


@attrs.frozen(kw_only=True)
class Forget:
    task: Task


@attrs.frozen(kw_only=True)
class AttachShim:
    address: str
    namespace: str
    binary: str
    task_id: str


@attrs.frozen(kw_only=True)
class ReleaseShim:
    shim: Shim
    task_id: str


@attrs.frozen(kw_only=True)
class JoinShim:
    """Join the live shim at ``address`` (None if there is none, or it is going away)."""

    address: str
    task_id: str


@attrs.frozen(kw_only=True)
class StopProxy:
    shim: Shim


@attrs.frozen(kw_only=True)
class Adopt:
    """A task found on disk at start-up, served by ``shim``."""

    task: Task


@attrs.frozen(kw_only=True)
class ShimGone:
    shim: Shim


class TaskTable(Actor):
    def __init__(self, *, proxies: Supervisor, shim_state_dir: str, publish, call_timeout: float,
                 connect_timeout: float, on_gone: Callable[[Shim, list[Task]], Awaitable[None]],
                 recover: Callable[["TaskTable"], Awaitable[None]] | None = None) -> None:
        self.proxies = proxies
        self.shim_state_dir = shim_state_dir
        self.publish = publish
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.on_gone = on_gone
        self.recover = recover
        self.tasks: dict[tuple[str, str], Task] = {}
        self.shims: dict[str, Shim] = {}
        self._generation = 0

    async def on_start(self) -> None:
        # A restarted table starts from the disk again: drop proxies of the previous incarnation.
        for name in list(self.proxies.children()):
            await self.proxies.stop_child(name)
        if self.recover is not None:
            await self.recover(self)

    def statistics(self) -> dict:
        states: dict[str, int] = {}
        for t in self.tasks.values():
            states[t.state] = states.get(t.state, 0) + 1
        return {"tasks": states, "shims": len(self.shims)}

    # -- tasks ---------------------------------------------------------------------

    @handles(Reserve)
    async def reserve(self, msg: Reserve) -> tuple[Task, bool]:
        key = (msg.namespace, msg.id)
        existing = self.tasks.get(key)
        if existing is not None:
            return existing, False
        task = Task(namespace=msg.namespace, id=msg.id, bundle=msg.bundle, runtime=msg.runtime)
        self.tasks[key] = task
        return task, True

    @handles(Finish)
    async def finish(self, msg: Finish) -> None:
        task = msg.task
        task.error = msg.error
        if msg.error is None:
            task.state = LIVE
        elif self.tasks.get((task.namespace, task.id)) is task:
            del self.tasks[(task.namespace, task.id)]
        task.created.set()

    @handles(Adopt)
    async def adopt(self, msg: Adopt) -> None:
        task = msg.task
        task.state = LIVE
        task.created.set()
        self.tasks[(task.namespace, task.id)] = task

    @handles(Lookup)
    async def lookup(self, msg: Lookup) -> Task:
        task = self.tasks.get((msg.namespace, msg.id))
        if task is None or task.state == CREATING:
            raise errdefs.NotFound(f"task {msg.id!r}: not found")
        return task

    @handles(ListTasks)
    async def list(self, msg: ListTasks) -> list[Task]:
        return [t for (ns, _), t in sorted(self.tasks.items())
                if t.state != CREATING and (msg.namespace is None or ns == msg.namespace)]

    @handles(Forget)
    async def forget(self, msg: Forget) -> None:
        task = msg.task
        if self.tasks.get((task.namespace, task.id)) is task:
            del self.tasks[(task.namespace, task.id)]

    # -- shims -----------------------------------------------------------------------

    @handles(AttachShim)
    async def attach_shim(self, msg: AttachShim) -> Shim:
        shim = self.shims.get(msg.address)
        if shim is None or shim.gone or shim.closing:
            shim = Shim(address=msg.address, namespace=msg.namespace, binary=msg.binary,
                        state_dir=self.shim_state_dir)
            shim.tasks.add(msg.task_id)
            self.shims[msg.address] = shim
            await self._spawn_proxy(shim)
        else:
            shim.tasks.add(msg.task_id)
        return shim

    async def _spawn_proxy(self, shim: Shim) -> None:
        self._generation += 1
        name = f"shim-{shim.key[:12]}-{self._generation}"
        shim.proxy_name = name
        table = self.ref

        async def gone(s: Shim) -> None:
            await table.tell(ShimGone(shim=s), timeout=self.call_timeout)

        await self.proxies.start_child(ChildSpec(
            name=name, restart=Restart.TRANSIENT,
            start=lambda: ShimProxy(shim, publish=self.publish, on_gone=gone,
                                    call_timeout=self.call_timeout, connect_timeout=self.connect_timeout)))

    @handles(JoinShim)
    async def join_shim(self, msg: JoinShim) -> Shim | None:
        shim = self.shims.get(msg.address)
        if shim is None or shim.gone or shim.closing or not shim.connected.is_set():
            return None
        shim.tasks.add(msg.task_id)  # in the same turn: a concurrent release cannot see it empty
        return shim

    @handles(ReleaseShim)
    async def release_shim(self, msg: ReleaseShim) -> bool:
        """Drop ``task_id`` from the shim; True when the shim serves nothing any more."""
        shim = msg.shim
        shim.tasks.discard(msg.task_id)
        if shim.tasks:
            return False
        shim.closing = True
        return True

    @handles(StopProxy)
    async def stop_proxy(self, msg: StopProxy) -> None:
        shim = msg.shim
        if self.shims.get(shim.address) is shim:
            del self.shims[shim.address]
        name = shim.proxy_name
        if name and name in self.proxies.children():
            await self.proxies.stop_child(name)

    @handles(ShimGone)
    async def shim_gone(self, msg: ShimGone) -> None:
        shim = msg.shim
        victims = [t for t in self.tasks.values() if t.shim is shim and t.state == LIVE]
        for task in victims:
            task.state = DEAD
        if self.shims.get(shim.address) is shim:
            del self.shims[shim.address]
        # the manager's clean-up ends with StopProxy
        self.nursery.start_soon(self.on_gone, shim, victims)


def describe(task: Task) -> dict[str, Any]:
    return {"namespace": task.namespace, "id": task.id, "state": task.state, "pid": task.pid,
            "shim": task.shim.address if task.shim else ""}
