"""The shim task API (``Task.*``): containers, processes, exits and their events.

All state lives on the loop's one thread.  Handlers are coroutines: they check the
transition table, move the process to a transitional state, await runc (a child
process), then re-check and finish.  Exits come from the reaper and are turned
into events in containerd's order: create → start → exec-added → exec-started →
exec exits → init exit → delete; an exit seen while its start is in flight waits
for the start event, and an init exit waits until every exec has exited.
"""

from __future__ import annotations

import json
import os
import signal
import time

from wire import errdefs
from wire.identifiers import validate_identifier

from . import events as ev
from .io import ProcessIO
from .mount import mount_rootfs, unmount_all
from .oom import OOMWatcher
from .process import CREATED, DELETING, PAUSING, RESUMING, STARTING, Container, Process
from .runc import Runc

API_VERSION = 3
DEFAULT_RUNC_ROOT = "/run/dockyard/runc"
UNCLAIMED_EXITS_KEPT = 1024
UNDO_TIMEOUT = 10.0  # seconds for the runc delete that undoes a failed create
OPTION_KEYS = ("binary_name", "root", "systemd_cgroup", "group")


class Call:
    """What a handler knows about its request."""

    __slots__ = ("namespace", "deadline")

    def __init__(self, namespace: str | None, deadline_ns: int | None) -> None:
        self.namespace = namespace
        self.deadline = None if deadline_ns is None else time.monotonic() + (deadline_ns - time.time_ns()) / 1e9


def _text(req: dict, key: str, *, required: bool = False) -> str:
    value = req.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise errdefs.InvalidArgument(f"{key}: must be a string, got {type(value).__name__}")
    if required and not value:
        raise errdefs.InvalidArgument(f"{key}: required")
    return value


def _exec_id(req: dict) -> str:
    exec_id = _text(req, "exec_id")
    return validate_identifier(exec_id, "exec id") if exec_id else ""


def _int(req: dict, key: str, default: int = 0) -> int:
    value = req.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise errdefs.InvalidArgument(f"{key}: must be an integer")
    return value


def _read_pid(path: str) -> int:
    with open(path) as fh:
        return int(fh.read().strip())


class TaskService:
    def __init__(self, loop, reaper_factory, *, namespace: str, console_dir: str, on_shutdown) -> None:
        self.loop = loop
        self.namespace = namespace
        self.console_dir = console_dir
        self.events = ev.EventLog(namespace)
        self.containers: dict[str, Container] = {}
        self._by_pid: dict[int, Process] = {}
        self._unclaimed: dict[int, tuple[int, int]] = {}
        self._on_shutdown = on_shutdown
        self.reaper = reaper_factory(self._on_exit)
        self.methods = {
            "Task.Connect": self.Connect, "Task.Create": self.Create, "Task.Start": self.Start,
            "Task.Exec": self.Exec, "Task.Kill": self.Kill, "Task.State": self.State,
            "Task.Wait": self.Wait, "Task.Delete": self.Delete, "Task.Pids": self.Pids,
            "Task.Pause": self.Pause, "Task.Resume": self.Resume, "Task.ResizePty": self.ResizePty,
            "Task.CloseIO": self.CloseIO, "Task.Update": self.Update, "Task.Stats": self.Stats,
            "Task.Shutdown": self.Shutdown, "Task.Ack": self.Ack,
        }

    # -- lookups --------------------------------------------------------------------

    def _container(self, req: dict) -> Container:
        cid = validate_identifier(_text(req, "id", required=True), "container id")
        try:
            return self.containers[cid]
        except KeyError:
            raise errdefs.NotFound(f"container {cid!r}: not found") from None

    def _emit(self, c: Container, topic: str, event: dict) -> None:
        self.events.emit(topic, event, c.bundle)

    # -- exits ------------------------------------------------------------------------

    def _on_exit(self, pid: int, status: int, at: int) -> None:
        proc = self._by_pid.pop(pid, None)
        if proc is None:  # not known yet (its start is in flight) or not ours
            self._unclaimed[pid] = (status, at)
            while len(self._unclaimed) > UNCLAIMED_EXITS_KEPT:
                del self._unclaimed[next(iter(self._unclaimed))]
            return
        self._exited(proc, status, at)

    def _claim(self, proc: Process, pid: int, since_ns: int) -> None:
        """``pid`` is ``proc``'s from now on; an exit already reaped for it is applied.

        Only an exit reaped after ``since_ns`` (when the runc call that made the process
        began) can be this process's: an older one belonged to an earlier holder of the pid.
        """
        proc.pid = pid
        early = self._unclaimed.pop(pid, None)
        if early is not None and early[1] < since_ns:
            early = None
        if early is None:
            self._by_pid[pid] = proc
        elif proc.state == STARTING:
            proc.pending_exit = early
        else:
            self._exited(proc, *early)

    def _exited(self, proc: Process, status: int, at: int) -> None:
        if proc.state == STARTING:
            proc.pending_exit = (status, at)  # published right after the start event
            return
        c = self.containers.get(proc.container_id)
        if c is not None and proc is c.init and c.live_execs():
            c.deferred_init_exit = (status, at)  # after every exec's exit
            return
        proc.exit_status, proc.exited_at = status, at
        quiet = proc.state == DELETING
        proc.apply("exit")
        if proc.io is not None:
            proc.io.process_exited()
        if c is not None and not quiet:
            self._emit(c, ev.TOPIC_EXIT, {"container_id": c.id, "id": proc.exec_id or c.id, "pid": proc.pid,
                                          "exit_status": status, "exited_at": at})
        self._wake(proc)
        if c is not None and proc is not c.init:
            self._finish_deferred_init(c)

    def _finish_deferred_init(self, c: Container) -> None:
        if c.deferred_init_exit is not None and not c.live_execs():
            status, at = c.deferred_init_exit
            c.deferred_init_exit = None
            self._exited(c.init, status, at)

    def _wake(self, proc: Process) -> None:
        waiters, proc.waiters = proc.waiters, []
        for fut in waiters:
            fut.set_result(None)

    # -- lifecycle --------------------------------------------------------------------

    async def Connect(self, call: Call, req: dict) -> dict:
        c = self.containers.get(_text(req, "id"))
        return {"shim_pid": os.getpid(), "task_pid": c.init.pid if c else 0, "version": API_VERSION}

    async def Create(self, call: Call, req: dict) -> dict:
        cid = validate_identifier(_text(req, "id", required=True), "container id")
        if cid in self.containers:
            raise errdefs.AlreadyExists(f"container {cid!r}: already exists")
        bundle = _text(req, "bundle", required=True)
        if not os.path.isabs(bundle) or not os.path.isfile(os.path.join(bundle, "config.json")):
            raise errdefs.InvalidArgument(f"bundle {bundle!r}: not an absolute path holding config.json")
        options = self._runc_options(bundle, req.get("options") or {})
        runc = Runc(self.loop, self.reaper, binary=options.get("binary_name") or "runc",
                    root=options.get("root") or os.path.join(DEFAULT_RUNC_ROOT, self.namespace),
                    log_path=os.path.join(bundle, "log.json"), systemd_cgroup=bool(options.get("systemd_cgroup")))
        init = Process(cid, "", bundle, stdin=_text(req, "stdin"), stdout=_text(req, "stdout"),
                       stderr=_text(req, "stderr"), terminal=bool(req.get("terminal")))
        c = Container(cid, bundle, runc, init)
        self.containers[cid] = c  # reserved: a second Create of this id is refused meanwhile
        rootfs = req.get("rootfs") or []
        created = False
        try:
            if rootfs:
                if not isinstance(rootfs, list) or not all(isinstance(m, dict) for m in rootfs):
                    raise errdefs.InvalidArgument("rootfs: must be a list of {type, source, target, options}")
                os.makedirs(os.path.join(bundle, "rootfs"), exist_ok=True)
                mount_rootfs(rootfs, os.path.join(bundle, "rootfs"))
                c.mounted = True
            init.io = ProcessIO(self.loop, stdin=init.stdin, stdout=init.stdout, stderr=init.stderr,
                                terminal=init.terminal, console_dir=self.console_dir)
            pid_file = os.path.join(bundle, "init.pid")
            since = time.time_ns()
            created = True  # from here on runc may hold state for it, even if create fails
            await runc.create(cid, bundle, pid_file=pid_file, console_socket=init.io.console_path,
                              stdio=init.io.runc_stdio, deadline=call.deadline)
            init.io.started()
            pid = _read_pid(pid_file)
        except BaseException:
            await self._undo_create(c, created)
            raise
        self._emit(c, ev.TOPIC_CREATE, {
            "container_id": cid, "bundle": bundle, "rootfs": rootfs, "checkpoint": "", "pid": pid,
            "io": {"stdin": init.stdin, "stdout": init.stdout, "stderr": init.stderr, "terminal": init.terminal}})
        try:
            c.oom = OOMWatcher(self.loop, pid, lambda: self._emit(c, ev.TOPIC_OOM, {"container_id": cid}))
        except OSError:
            c.oom = None  # no memory cgroup to watch: no OOM notices, nothing else lost
        self._claim(init, pid, since)
        return {"pid": pid}

    async def _undo_create(self, c: Container, created: bool) -> None:
        if c.init.io is not None:
            c.init.io.close()
        if created:
            try:
                await c.runc.delete(c.id, force=True, deadline=time.monotonic() + UNDO_TIMEOUT)
            except errdefs.DockyardError:
                pass
        if c.mounted:
            unmount_all(os.path.join(c.bundle, "rootfs"))
        self.containers.pop(c.id, None)

    def _runc_options(self, bundle: str, overrides: dict) -> dict:
        options: dict = {}
        try:
            with open(os.path.join(bundle, "options.json")) as fh:
                options.update(json.load(fh))
        except FileNotFoundError:
            pass
        except ValueError as e:
            raise errdefs.InvalidArgument(f"bundle {bundle!r}: options.json: {e}") from None
        if not isinstance(overrides, dict):
            raise errdefs.InvalidArgument("options: must be a map")
        options.update({k: v for k, v in overrides.items() if k in OPTION_KEYS})
        return options

    async def Start(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        if proc.exec_id:
            c.init.check("exec")
        proc.apply("start")
        since = time.time_ns()
        try:
            if proc is c.init:
                await c.runc.start(c.id, deadline=call.deadline)
                pid = proc.pid
            else:
                pid = await self._start_exec(c, proc, call)
        except BaseException:
            proc.apply("start_failed")
            if proc.exec_id and proc.io is not None:
                proc.io.close()
                proc.io = None
            self._finish_deferred_init(c)
            raise
        proc.apply("started")
        if proc is c.init:
            self._emit(c, ev.TOPIC_START, {"container_id": c.id, "pid": pid})
        else:
            self._emit(c, ev.TOPIC_EXEC_STARTED, {"container_id": c.id, "exec_id": proc.exec_id, "pid": pid})
            self._claim(proc, pid, since)
        if proc.pending_exit is not None:
            status, at = proc.pending_exit
            proc.pending_exit = None
            self._exited(proc, status, at)
        return {"pid": pid}

    async def _start_exec(self, c: Container, proc: Process, call: Call) -> int:
        spec = dict(proc.spec or {})
        spec["terminal"] = proc.terminal
        base = os.path.join(c.bundle, f"exec-{proc.exec_id}")
        with open(base + ".json", "w") as fh:
            json.dump(spec, fh)
        proc.io = ProcessIO(self.loop, stdin=proc.stdin, stdout=proc.stdout, stderr=proc.stderr,
                            terminal=proc.terminal, console_dir=self.console_dir)
        try:
            await c.runc.exec(c.id, process_file=base + ".json", pid_file=base + ".pid",
                              console_socket=proc.io.console_path, stdio=proc.io.runc_stdio, deadline=call.deadline)
            proc.io.started()
            return _read_pid(base + ".pid")
        finally:
            for suffix in (".json", ".pid"):
                try:
                    os.unlink(base + suffix)
                except OSError:
                    pass

    async def Exec(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        exec_id = _exec_id(req)
        if not exec_id:
            raise errdefs.InvalidArgument("exec_id: required")
        if exec_id in c.execs:
            raise errdefs.AlreadyExists(f"process {c.id}/{exec_id}: already exists")
        c.init.check("exec")
        spec = req.get("spec")
        if not isinstance(spec, dict) or not spec.get("args"):
            raise errdefs.InvalidArgument(f"process {c.id}/{exec_id}: spec must be an OCI process with args")
        c.execs[exec_id] = Process(c.id, exec_id, c.bundle, stdin=_text(req, "stdin"), stdout=_text(req, "stdout"),
                                   stderr=_text(req, "stderr"), terminal=bool(req.get("terminal")), spec=spec)
        self._emit(c, ev.TOPIC_EXEC_ADDED, {"container_id": c.id, "exec_id": exec_id})
        return {}

    async def Kill(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        sig = _int(req, "signal", signal.SIGTERM)
        proc.check("kill")
        if proc is c.init and (req.get("all") or proc.state not in ("running", "created")):
            await c.runc.kill(c.id, sig, all_=bool(req.get("all")), deadline=call.deadline)
            return {}
        if not proc.pid:
            raise errdefs.FailedPrecondition(f"process {proc.name!r}: not started")
        # The pid is our unreaped child: it cannot have been reused.
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            raise errdefs.NotFound(f"process {proc.name!r}: already finished") from None
        return {}

    async def State(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        return {"id": c.id, "exec_id": proc.exec_id, "bundle": c.bundle, "pid": proc.pid, "status": proc.status,
                "stdin": proc.stdin, "stdout": proc.stdout, "stderr": proc.stderr, "terminal": proc.terminal,
                "exit_status": proc.exit_status, "exited_at": proc.exited_at}

    async def Wait(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        if not proc.exited_at:
            fut = self.loop.create_future()
            proc.waiters.append(fut)
            await fut
        return {"exit_status": proc.exit_status, "exited_at": proc.exited_at}

    async def Delete(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        if proc.exec_id:
            proc.check("delete")
            del c.execs[proc.exec_id]
            if proc.io is not None:
                proc.io.close()
            return {"pid": proc.pid, "exit_status": proc.exit_status, "exited_at": proc.exited_at}
        was_created = proc.state == CREATED
        proc.apply("delete")
        try:
            await c.runc.delete(c.id, force=was_created, deadline=call.deadline)
        except errdefs.NotFound:
            pass  # runc no longer knows it: nothing to delete
        except BaseException:
            proc.undo_delete()
            raise
        unmount_all(os.path.join(c.bundle, "rootfs"))
        if proc.io is not None:
            proc.io.close()
        if c.oom is not None:
            c.oom.close()
        if not proc.exited_at:  # a created task killed by the delete, its exit not seen yet
            proc.exit_status, proc.exited_at = 128 + signal.SIGKILL, time.time_ns()
        proc.apply("deleted")
        self._by_pid.pop(proc.pid, None)
        del self.containers[c.id]
        self._emit(c, ev.TOPIC_DELETE, {"container_id": c.id, "id": c.id, "pid": proc.pid,
                                        "exit_status": proc.exit_status, "exited_at": proc.exited_at})
        self._wake(proc)
        return {"pid": proc.pid, "exit_status": proc.exit_status, "exited_at": proc.exited_at}

    # -- inspection and control ------------------------------------------------------------

    async def Pids(self, call: Call, req: dict) -> list:
        c = self._container(req)
        pids = await c.runc.ps(c.id, deadline=call.deadline)
        exec_of = {p.pid: p.exec_id for p in c.execs.values() if p.pid}
        return [{"pid": pid, "exec_id": exec_of.get(pid, "")} for pid in pids]

    async def Pause(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        await self._freeze_step(c, "pause", PAUSING, c.runc.pause, call.deadline, ev.TOPIC_PAUSED)
        return {}

    async def Resume(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        await self._freeze_step(c, "resume", RESUMING, c.runc.resume, call.deadline, ev.TOPIC_RESUMED)
        return {}

    async def _freeze_step(self, c: Container, action: str, transient: str, runc_step, deadline, topic: str) -> None:
        """Pause or resume: enter the transient state, run runc, then settle (or roll back) and publish."""
        c.init.apply(action)
        try:
            await runc_step(c.id, deadline=deadline)
        except BaseException:
            if c.init.state == transient:
                c.init.apply(f"{action}_failed")
            raise
        if c.init.state == transient:
            c.init.apply("paused" if action == "pause" else "resumed")
            self._emit(c, topic, {"container_id": c.id})

    async def ResizePty(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        if proc.io is None:
            raise errdefs.FailedPrecondition(f"process {proc.name!r}: not started")
        proc.io.resize(_int(req, "width"), _int(req, "height"))
        return {}

    async def CloseIO(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        proc = c.process(_exec_id(req))
        if req.get("stdin", True) and proc.io is not None:
            proc.io.close_stdin()
        return {}

    async def Update(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        resources = req.get("resources")
        if not isinstance(resources, dict):
            raise errdefs.InvalidArgument("resources: must be an OCI linux resources map")
        path = os.path.join(c.bundle, f"update-{os.urandom(4).hex()}.json")
        with open(path, "w") as fh:
            json.dump(resources, fh)
        try:
            await c.runc.update(c.id, path, deadline=call.deadline)
        finally:
            os.unlink(path)
        return {}

    async def Stats(self, call: Call, req: dict) -> dict:
        c = self._container(req)
        return stats_figures(await c.runc.stats(c.id, deadline=call.deadline))

    async def Shutdown(self, call: Call, req: dict) -> dict:
        if req.get("now") or not self.containers:
            self.loop.call_soon(self._on_shutdown)
        return {}

    async def Ack(self, call: Call, req: dict) -> dict:
        self.events.ack(_int(req, "seq"))
        return {}


def stats_figures(data: dict) -> dict:
    """runc's cgroup stats → the flat figures of ``Task.Stats`` (plus runc's data as ``raw``)."""
    cpu = (data.get("cpu") or {}).get("usage") or {}
    memory = (data.get("memory") or {}).get("usage") or {}
    pids = data.get("pids") or {}
    return {
        "cpu_usage_ns": cpu.get("total", 0), "cpu_user_ns": cpu.get("user", 0), "cpu_kernel_ns": cpu.get("kernel", 0),
        "memory_usage": memory.get("usage", 0), "memory_limit": memory.get("limit", 0),
        "memory_max_usage": memory.get("max", 0), "pids_current": pids.get("current", 0),
        "pids_limit": pids.get("limit", 0), "raw": data,
    }
