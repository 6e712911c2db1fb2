"""The task manager's flows: create, delete, dead shims and restart recovery.

These run in the caller's task (an RPC handler, the table's nursery), never in
the table actor's turn: slow steps (bundle files, netns, CNI, shim start, shim
calls, unmount) happen here and the table is updated by messages before and
after.  A Create is reserved first (a retry with the same id joins the one in
flight) and everything it made is released, shielded and bounded, if it fails
or is cancelled.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import attrs
import trio

from actors.timeouts import ACTOR_ASK
from wire import errdefs, identifiers
from wire.events import TOPIC_TASK_DELETE, TOPIC_TASK_EXIT, TaskDelete, TaskExit

from . import binary, bundle as bundles, shimcmd
from .bundle import Bundle
from .shim import Shim
from .tasknet import TaskNetwork
from .table import (
    DEAD, LIVE, AttachShim, Adopt, Finish, Forget, JoinShim, ListTasks, Lookup, ReleaseShim, Reserve, StopProxy,
    Task, TaskTable,
)

log = logging.getLogger("dockyard.runtime")

UNKNOWN_EXIT = 255
DELETE_EVENT_WAIT = 2.0


@attrs.frozen(kw_only=True)
class RuntimeSettings:
    bundle_root: str  # <state>/io.dockyard.runtime.v1.task
    daemon_state: str
    daemon_address: str
    runc_binary: str = "runc"
    netns_dir: str = ""
    cni_conf_dir: str = ""
    cni_bin_dirs: tuple[str, ...] = ()
    cni_network: str = ""
    shim_debug: bool = False


@attrs.frozen(kw_only=True)
class CreateTask:
    container_id: str
    container: dict  # the container record
    rootfs: list[dict] = attrs.Factory(list)
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    options: dict | None = None
    runtime_path: str = ""


class TaskManager:
    """What the Tasks service (and later CRI) calls; owns no state beyond the table's address."""

    def __init__(self, settings: RuntimeSettings, timeouts, publish) -> None:
        self.settings = settings
        self.timeouts = timeouts
        self.publish = publish  # (namespace, topic, event, timestamp) -> None
        self.table = None  # ActorRef of the TaskTable, set by the plugin
        self.start_shim = shimcmd.start  # or the zygotes' start_shim (same signature), set by the plugin
        self.group_addresses: dict[tuple[str, str], str] = {}  # (namespace, group) → shim address
        self.ask_timeout = timeouts(ACTOR_ASK)
        self.call_timeout = timeouts(shimcmd.SHIM_CALL)
        self.network = TaskNetwork(settings)

    def base_options(self, namespace: str) -> dict:
        """Runtime options every task's options.json starts from."""
        return {"binary_name": self.settings.runc_binary,
                "root": os.path.join(self.settings.daemon_state, "runc", namespace), "systemd_cgroup": False}

    async def ask(self, msg) -> Any:
        return await self.table.ask(msg, timeout=self.ask_timeout)

    # -- lookups ------------------------------------------------------------------------

    async def get(self, namespace: str, cid: str) -> Task:
        identifiers.validate_identifier(cid, "task id")
        return await self.ask(Lookup(namespace=namespace, id=cid))

    async def list(self, namespace: str | None) -> list[Task]:
        return await self.ask(ListTasks(namespace=namespace))

    async def shim_call(self, task: Task, method: str, params: dict, *, timeout: float | None = None) -> Any:
        if task.state == DEAD or task.shim is None:
            raise errdefs.NotFound(f"task {task.id!r}: its shim is gone (task stopped)")
        return await task.shim.call(method, params, timeout=timeout or self.call_timeout)

    async def state(self, task: Task, exec_id: str = "") -> dict:
        """The shim's view of a process, or a synthesized one for tombstones and unreachable shims."""
        if task.state == DEAD:
            exit_ = task.exit or {}
            return {**_process(task, status="stopped", pid=exit_.get("pid", task.pid),
                               exit_status=exit_.get("exit_status", UNKNOWN_EXIT), exited_at=exit_.get("exited_at", 0)),
                    **task.io}
        try:
            st = await self.shim_call(task, "Task.State", {"id": task.id, "exec_id": exec_id},
                                      timeout=min(self.call_timeout, 2.0))
        except (errdefs.Unavailable, errdefs.DeadlineExceeded):
            if exec_id:
                raise
            return {**_process(task, status="unknown", pid=task.pid), **task.io}
        return {"container_id": task.id, "id": exec_id or task.id, "pid": st.get("pid", 0),
                "status": st.get("status", "unknown"), "stdin": st.get("stdin", ""), "stdout": st.get("stdout", ""),
                "stderr": st.get("stderr", ""), "terminal": bool(st.get("terminal", False)),
                "exit_status": st.get("exit_status", 0), "exited_at": st.get("exited_at", 0),
                "namespace": task.namespace}

    # -- create ---------------------------------------------------------------------

    async def create(self, namespace: str, req: CreateTask) -> int:
        cid = req.container_id
        identifiers.validate_identifier(cid, "task id")
        runtime = req.runtime_path or req.container["runtime"]["name"]
        shim_binary = binary.resolve(runtime)  # unknown runtime: NotFound/InvalidArgument before anything
        bundle = Bundle(root=self.settings.bundle_root, namespace=namespace, id=cid)
        task, new = await self.ask(Reserve(namespace=namespace, id=cid, bundle=bundle, runtime=runtime))
        if not new:
            if task.state == LIVE or task.state == DEAD:
                raise errdefs.AlreadyExists(f"task {cid!r}: already exists")
            with trio.move_on_after(self.timeouts(shimcmd.SHIM_START) + self.call_timeout):
                await task.created.wait()  # a retry joins the create in flight
            if not task.created.is_set():
                raise errdefs.Unavailable(f"task {cid!r}: a create of it is still in flight")
            if task.error is not None:
                raise task.error
            return task.pid
        undo: list = []
        task.io = {"stdin": req.stdin, "stdout": req.stdout, "stderr": req.stderr, "terminal": req.terminal}
        try:
            task.pid = await self._create(namespace, task, req, shim_binary, undo)
        except BaseException as exc:
            with trio.CancelScope(shield=True), trio.move_on_after(self.timeouts(shimcmd.SHIM_DELETE) + 5):
                for step in reversed(undo):
                    try:
                        await step()
                    except Exception as cleanup_error:  # keep undoing the rest
                        log.warning("task %s: undo after failed create: %r", cid, cleanup_error)
                await self.ask(Finish(task=task, error=_as_create_error(cid, exc)))
            raise
        with trio.CancelScope(shield=True):  # done is done: a cancel arriving now must not strand it half-way
            await self.ask(Finish(task=task))
        return task.pid

    async def _create(self, namespace: str, task: Task, req: CreateTask, shim_binary: str, undo: list) -> int:
        cid = task.id
        bundle = task.bundle
        spec = req.container.get("spec") or {}
        if not isinstance(spec, dict) or not spec:
            raise errdefs.InvalidArgument(f"container {cid!r}: has no OCI spec")
        spec = dict(spec)
        options = {**self.base_options(namespace), **(req.options or req.container["runtime"].get("options") or {})}
        steps = _Steps(f"create {namespace}/{cid}")
        network = self.network.plan(namespace, cid, spec)
        await trio.to_thread.run_sync(bundle.create, spec, options)
        undo.append(lambda: trio.to_thread.run_sync(bundle.remove))
        await trio.to_thread.run_sync(bundle.write_json, bundles.IO, task.io)
        if network:
            undo.append(lambda: self.network.down(bundle, network))
            await self.network.up(bundle, spec, network)
            await trio.to_thread.run_sync(bundle.write_json, bundles.CONFIG, spec)
        steps("bundle+network")
        group = options.get("group") or _group_annotation(spec)
        joined = None
        if group and (namespace, group) in self.group_addresses:
            joined = await self.ask(JoinShim(address=self.group_addresses[(namespace, group)], task_id=cid))
        if joined is not None:
            # the group's shim is connected and not leaving: `start` would only print its address
            boot = {"version": shimcmd.MAX_VERSION, "address": joined.address, "protocol": "msgpack-rpc"}
        else:
            # shielded (and bounded): a start cut short could leave a shim whose address nobody knows
            with trio.CancelScope(shield=True):
                boot = await self.start_shim(shim_binary, bundle.path, namespace, cid, self.settings.daemon_address,
                                             timeout=self.timeouts(shimcmd.SHIM_START), debug=self.settings.shim_debug)
            undo.append(lambda: self._retire_unused_shim(task, boot["address"]))
            if group:
                self.group_addresses[(namespace, group)] = boot["address"]
        steps("shim start" if joined is None else "shim joined")
        await trio.to_thread.run_sync(_write_bootstrap, bundle, boot, shim_binary)
        shim = joined or await self.ask(AttachShim(address=boot["address"], namespace=namespace,
                                                   binary=shim_binary, task_id=cid))
        task.shim = shim
        undo.append(lambda: self._release(task, shutdown=True))
        # shielded (and bounded): the outcome must be known, or the shim could keep a container we never saw
        with trio.CancelScope(shield=True):
            try:
                result = await shim.call("Task.Create", {
                    "id": cid, "bundle": bundle.path, "rootfs": req.rootfs, "stdin": req.stdin,
                    "stdout": req.stdout, "stderr": req.stderr, "terminal": req.terminal, "options": options,
                }, timeout=self.call_timeout)
            except (errdefs.DeadlineExceeded, errdefs.Unavailable):
                undo.append(lambda: self._shim_delete_quietly(task))  # it may have created it after all
                raise
        undo.append(lambda: self._shim_delete_quietly(task))
        steps("shim Task.Create")
        return int(result.get("pid", 0))

    async def _retire_unused_shim(self, task: Task, address: str) -> None:
        if task.shim is None:  # started for this create, which failed before attaching it
            await shimcmd.retire(address)

    async def _shim_delete_quietly(self, task: Task) -> None:
        try:
            await task.shim.call("Task.Kill", {"id": task.id, "exec_id": "", "signal": 9, "all": True},
                                 timeout=self.call_timeout)
        except errdefs.DockyardError:
            pass
        with trio.move_on_after(self.call_timeout):
            while True:
                try:
                    await task.shim.call("Task.Delete", {"id": task.id, "exec_id": ""}, timeout=self.call_timeout)
                    return
                except errdefs.FailedPrecondition:
                    await trio.sleep(0.05)  # still running: the kill lands in a moment
                except errdefs.DockyardError:
                    return

    # -- delete -------------------------------------------------------------------

    async def delete(self, namespace: str, cid: str) -> dict:
        task = await self.get(namespace, cid)
        if task.deleting:
            raise errdefs.FailedPrecondition(f"task {cid!r}: a delete is already in progress")
        if task.state == DEAD:
            await self.ask(Forget(task=task))
            exit_ = task.exit or {"pid": task.pid, "exit_status": UNKNOWN_EXIT, "exited_at": time.time_ns()}
            self.publish(namespace, TOPIC_TASK_DELETE, _unstructure(TaskDelete(
                container_id=cid, id=cid, pid=exit_["pid"], exit_status=exit_["exit_status"],
                exited_at=exit_["exited_at"])), 0)
            return {"id": cid, **exit_}
        task.deleting = True
        steps = _Steps(f"delete {namespace}/{cid}")
        try:
            shim = task.shim
            published = shim.waiter(cid, TOPIC_TASK_DELETE)
            result = await shim.call("Task.Delete", {"id": cid, "exec_id": ""}, timeout=self.call_timeout)
            steps("shim Task.Delete")
            with trio.move_on_after(DELETE_EVENT_WAIT):
                await published.wait()  # the pump publishes /tasks/delete before we let the shim go
            steps("/tasks/delete published")
        finally:
            task.deleting = False
        await self.ask(Forget(task=task))
        with trio.CancelScope(shield=True):
            await self._release(task, shutdown=True)
            steps("shim released")
            await self._teardown(task)
            steps("network and bundle removed")
        return {"id": cid, "pid": int(result.get("pid", 0)), "exit_status": int(result.get("exit_status", 0)),
                "exited_at": int(result.get("exited_at", 0))}

    async def _release(self, task: Task, *, shutdown: bool) -> None:
        shim = task.shim
        if shim is None:
            return
        last = await self.ask(ReleaseShim(shim=shim, task_id=task.id))
        if not last:
            return
        if shutdown and not shim.gone:
            with trio.move_on_after(self.timeouts(shimcmd.SHIM_SHUTDOWN)):
                try:
                    await shim.call("Task.Shutdown", {"id": task.id, "now": False},
                                    timeout=self.timeouts(shimcmd.SHIM_SHUTDOWN))
                except errdefs.DockyardError:
                    pass  # the shim closing its socket on the way out looks like an error here
        await self.ask(StopProxy(shim=shim))
        await trio.to_thread.run_sync(shim.forget_acked)

    async def _teardown(self, task: Task) -> None:
        network = await trio.to_thread.run_sync(task.bundle.read_json, bundles.NETWORK)
        if network:
            await self.network.down(task.bundle, network)
        await trio.to_thread.run_sync(task.bundle.remove)

    # -- dead shims -------------------------------------------------------------------

    async def shim_gone(self, shim: Shim, tasks: list[Task]) -> None:
        """Clean up after a shim that died: `delete` mode, unmount, exit events, tombstones."""
        async with trio.open_nursery() as nursery:
            for task in tasks:
                nursery.start_soon(self._bury, shim, task)
        await self.ask(StopProxy(shim=shim))
        await trio.to_thread.run_sync(shim.forget_acked)

    async def wait_buried(self, task: Task) -> dict | None:
        """The exit a dead shim's burial records for ``task`` (None if none comes in time)."""
        with trio.move_on_after(self.timeouts(shimcmd.SHIM_DELETE) + 2):
            await task.buried.wait()
        return task.exit

    async def _bury(self, shim: Shim, task: Task) -> None:
        cid = task.id
        exit_ = None
        try:
            exit_ = await shimcmd.delete(shim.binary, task.bundle.path, task.namespace, cid,
                                         self.settings.daemon_address, timeout=self.timeouts(shimcmd.SHIM_DELETE))
        except errdefs.DockyardError as exc:
            log.warning("task %s: shim delete failed: %s", cid, exc.message)
        if not exit_ or not exit_.get("exited_at"):
            exit_ = {"pid": (exit_ or {}).get("pid", task.pid), "exit_status": UNKNOWN_EXIT,
                     "exited_at": time.time_ns()}
        try:
            await self._teardown(task)
        except Exception as exc:
            log.warning("task %s: clean-up after dead shim: %r", cid, exc)
        already = shim.exits.get(cid)
        if already is not None:  # the shim reported the exit before it died: keep its figures
            exit_ = {"pid": already.get("pid", exit_["pid"]), "exit_status": already.get("exit_status", 0),
                     "exited_at": already.get("exited_at", exit_["exited_at"])}
        task.exit = exit_
        task.buried.set()
        if already is None and cid not in shim.deleted:
            self.publish(task.namespace, TOPIC_TASK_EXIT, _unstructure(TaskExit(
                container_id=cid, id=cid, pid=exit_["pid"], exit_status=exit_["exit_status"],
                exited_at=exit_["exited_at"])), 0)
        if cid in shim.deleted:
            await self.ask(Forget(task=task))

    # -- restart recovery -----------------------------------------------------------

    async def recover(self, table: TaskTable) -> None:
        """Find every bundle, reconnect to its shim in parallel (budget per shim), rebuild the table."""
        found = await trio.to_thread.run_sync(bundles.scan, self.settings.bundle_root)
        by_address: dict[str, list[tuple[Bundle, str]]] = {}
        orphans: list[tuple[Bundle, str]] = []
        for b in found:
            boot = await trio.to_thread.run_sync(b.read_json, bundles.BOOTSTRAP)
            shim_binary = await trio.to_thread.run_sync(b.read_text, bundles.BINARY)
            if not boot or not boot.get("address") or not shim_binary:
                orphans.append((b, shim_binary or ""))
                continue
            by_address.setdefault(boot["address"], []).append((b, shim_binary))
        budget = self.timeouts(shimcmd.SHIM_LOAD)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for address, members in by_address.items():
                nursery.start_soon(self._reconnect, table, address, members, budget)
            for b, shim_binary in orphans:
                nursery.start_soon(self._clean_orphan, b, shim_binary)
        if found:
            log.info("recovered %d tasks of %d shims in %.0f ms (%d unfinished creates undone)",
                     len(found) - len(orphans), len(by_address), (time.perf_counter() - started) * 1000,
                     len(orphans))

    async def _reconnect(self, table: TaskTable, address: str, members: list[tuple[Bundle, str]],
                         budget: float) -> None:
        namespace = members[0][0].namespace
        shim_binary = members[0][1]
        shim = await table.attach_shim(AttachShim(address=address, namespace=namespace, binary=shim_binary,
                                                  task_id=members[0][0].id))
        for b, _ in members[1:]:
            shim.tasks.add(b.id)
        tasks = []
        for b, _ in members:
            task = Task(namespace=b.namespace, id=b.id, bundle=b, shim=shim)
            task.runtime = shim_binary
            task.io = await trio.to_thread.run_sync(b.read_json, bundles.IO) or {}
            await table.adopt(Adopt(task=task))
            tasks.append(task)
        with trio.move_on_after(budget) as scope:
            await shim.connected.wait()
        if scope.cancelled_caught:
            log.warning("shim %s did not answer within %gs: set aside (tasks %s show status unknown)",
                        address, budget, ", ".join(b.id for b, _ in members))
            return
        if shim.gone:
            return  # the proxy reported it; clean-up runs from ShimGone
        with trio.move_on_after(budget):
            async with trio.open_nursery() as nursery:
                for task in tasks:
                    nursery.start_soon(self._fill_pid, table, task)

    async def _fill_pid(self, table: TaskTable, task: Task) -> None:
        try:
            st = await task.shim.call("Task.State", {"id": task.id, "exec_id": ""}, timeout=self.call_timeout)
            task.pid = int(st.get("pid", 0))
            task.io = {k: st.get(k, "") for k in ("stdin", "stdout", "stderr")}
            task.io["terminal"] = bool(st.get("terminal", False))
        except errdefs.NotFound:
            log.warning("task %s: shim does not know it; cleaning up", task.id)
            table.nursery.start_soon(self._drop_unknown, task)  # asks the table: not from inside its start
        except errdefs.DockyardError as exc:
            log.warning("task %s: state after restart: %s", task.id, exc.message)

    async def _drop_unknown(self, task: Task) -> None:
        await self.ask(Forget(task=task))
        await self._release(task, shutdown=True)
        await self._teardown(task)

    async def _clean_orphan(self, b: Bundle, shim_binary: str) -> None:
        """A bundle without a shim address: a create that never finished; undo it."""
        if shim_binary:
            try:
                await shimcmd.delete(shim_binary, b.path, b.namespace, b.id, self.settings.daemon_address,
                                     timeout=self.timeouts(shimcmd.SHIM_DELETE))
            except errdefs.DockyardError:
                pass
        task = Task(namespace=b.namespace, id=b.id, bundle=b)
        await self._teardown(task)

class _Steps:
    """Debug log of how long each step of a flow took."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        now = time.perf_counter()
        log.debug("%s: %s took %.1f ms", self.what, step, (now - self.last) * 1000)
        self.last = now


def _as_create_error(cid: str, exc: BaseException) -> errdefs.DockyardError:
    """What a create that joined a failed one gets told."""
    if isinstance(exc, errdefs.DockyardError):
        return exc
    if isinstance(exc, trio.Cancelled):
        return errdefs.Canceled(f"task {cid!r}: create was cancelled")
    return errdefs.Internal(f"task {cid!r}: create failed: {exc!r}")


def _group_annotation(spec: dict) -> str:
    annotations = spec.get("annotations") or {}
    return annotations.get("io.dockyard.runc.v1.group") or annotations.get("io.kubernetes.cri.sandbox-id") or ""


def _write_bootstrap(bundle: Bundle, boot: dict, shim_binary: str) -> None:
    bundle.write_json(bundles.BOOTSTRAP, boot)
    bundle.write_text(bundles.BINARY, shim_binary)


def _process(task: Task, *, status: str, pid: int, exit_status: int = 0, exited_at: int = 0) -> dict:
    return {"container_id": task.id, "id": task.id, "pid": pid, "status": status, "stdin": "", "stdout": "",
            "stderr": "", "terminal": False, "exit_status": exit_status, "exited_at": exited_at,
            "namespace": task.namespace}


def _unstructure(event) -> dict:
    return attrs.asdict(event)
