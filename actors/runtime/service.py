"""``Tasks.*`` over msgpack-RPC and the plugins: the runtime (task manager) and its service.

Methods as containerd's Tasks service: Create Start Delete DeleteProcess Get
List Kill Exec ResizePty CloseIO Pause Resume ListPids Update Metrics Wait.
Task id = container id; ``exec_id`` names an extra process.  ``Wait`` honours
the caller's deadline (the CLI sends a long one).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import attrs

from actors.core import ChildSpec, Supervisor
from actors.metadata.plugin import Metadata
from actors.plugin import EVENT, METADATA, RUNTIME, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from wire import errdefs, filters, identifiers

from . import shimcmd
from .manager import CreateTask, RuntimeSettings, TaskManager
from .zygote import ZygoteKeeper, Zygotes
from .table import DEAD, TaskTable


@attrs.frozen(kw_only=True)
class RuntimeConfig:
    runc_binary: str = "runc"
    netns_dir: str = ""  # default <state>/netns
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dirs: list[str] = attrs.Factory(lambda: ["/opt/cni/bin", "/usr/lib/cni"])
    cni_network: str = ""  # default: the first conflist in cni_conf_dir
    shim_debug: bool = False
    shim_zygote: bool = True  # fork shims from a zygote per shim binary (False: run `start` per shim)


@attrs.frozen(kw_only=True)
class MountSpec:
    type: str
    source: str = ""
    target: str = ""
    options: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class CreateRequest:
    container_id: str
    rootfs: list[MountSpec] = attrs.Factory(list)
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    options: dict[str, Any] | None = None
    runtime_path: str = ""


@attrs.frozen(kw_only=True)
class ProcessRequest:
    container_id: str
    exec_id: str = ""


@attrs.frozen(kw_only=True)
class TaskRequest:
    container_id: str


@attrs.frozen(kw_only=True)
class ListRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class KillRequest:
    container_id: str
    exec_id: str = ""
    signal: int = 15
    all: bool = False


@attrs.frozen(kw_only=True)
class ExecRequest:
    container_id: str
    exec_id: str
    spec: dict[str, Any]
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


@attrs.frozen(kw_only=True)
class ResizeRequest:
    container_id: str
    exec_id: str = ""
    width: int
    height: int


@attrs.frozen(kw_only=True)
class CloseIORequest:
    container_id: str
    exec_id: str = ""
    stdin: bool = True


@attrs.frozen(kw_only=True)
class UpdateRequest:
    container_id: str
    resources: dict[str, Any] = attrs.Factory(dict)
    annotations: dict[str, str] = attrs.Factory(dict)


class TasksService(Service):
    name = "Tasks"

    def __init__(self, manager: TaskManager, metadata: Metadata) -> None:
        self.manager = manager
        self.metadata = metadata

    def _container(self, namespace: str, cid: str) -> dict:
        identifiers.validate_identifier(cid, "container id")
        with self.metadata.db.read() as conn:
            row = conn.execute("SELECT record FROM containers WHERE namespace = ? AND id = ?",
                               (namespace, cid)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"container {cid!r}: not found")
        return json.loads(row["record"])

    async def _call(self, ctx: CallContext, cid: str, method: str, params: dict) -> Any:
        task = await self.manager.get(ctx.namespace, cid)
        return await self.manager.shim_call(task, method, {"id": cid, **params},
                                            timeout=min(self.manager.call_timeout, ctx.remaining() or 1))

    @rpc(CreateRequest)
    async def Create(self, ctx, req: CreateRequest) -> dict:
        ns = ctx.namespace
        container = self._container(ns, req.container_id)
        pid = await self.manager.create(ns, CreateTask(
            container_id=req.container_id, container=container, rootfs=[attrs.asdict(m) for m in req.rootfs],
            stdin=req.stdin, stdout=req.stdout, stderr=req.stderr, terminal=req.terminal, options=req.options,
            runtime_path=req.runtime_path))
        return {"container_id": req.container_id, "pid": pid}

    @rpc(ProcessRequest)
    async def Start(self, ctx, req: ProcessRequest) -> dict:
        if req.exec_id:
            identifiers.validate_identifier(req.exec_id, "exec id")
        result = await self._call(ctx, req.container_id, "Task.Start", {"exec_id": req.exec_id})
        return {"pid": int(result.get("pid", 0))}

    @rpc(TaskRequest)
    async def Delete(self, ctx, req: TaskRequest) -> dict:
        return await self.manager.delete(ctx.namespace, req.container_id)

    @rpc(ProcessRequest)
    async def DeleteProcess(self, ctx, req: ProcessRequest) -> dict:
        if not req.exec_id:
            return await self.manager.delete(ctx.namespace, req.container_id)
        identifiers.validate_identifier(req.exec_id, "exec id")
        result = await self._call(ctx, req.container_id, "Task.Delete", {"exec_id": req.exec_id})
        return {"id": req.exec_id, "pid": int(result.get("pid", 0)),
                "exit_status": int(result.get("exit_status", 0)), "exited_at": int(result.get("exited_at", 0))}

    @rpc(ProcessRequest)
    async def Get(self, ctx, req: ProcessRequest) -> dict:
        task = await self.manager.get(ctx.namespace, req.container_id)
        return {"process": await self.manager.state(task, req.exec_id)}

    @rpc(ListRequest)
    async def List(self, ctx, req: ListRequest) -> dict:
        import trio

        flt = filters.parse_any(req.filters)
        tasks = await self.manager.list(ctx.namespace)
        out: list[dict] = [{}] * len(tasks)

        async def one(i, task):
            out[i] = await self.manager.state(task)

        async with trio.open_nursery() as nursery:
            for i, task in enumerate(tasks):
                nursery.start_soon(one, i, task)
        return {"tasks": [p for p in out if flt.match(filters.MappingAdaptor(p))]}

    @rpc(KillRequest)
    async def Kill(self, ctx, req: KillRequest) -> dict:
        if req.signal <= 0 or req.signal > 64:
            raise errdefs.InvalidArgument(f"signal {req.signal}: out of range")
        await self._call(ctx, req.container_id, "Task.Kill", {"exec_id": req.exec_id, "signal": req.signal,
                                                              "all": req.all})
        return {}

    @rpc(ExecRequest)
    async def Exec(self, ctx, req: ExecRequest) -> dict:
        identifiers.validate_identifier(req.exec_id, "exec id")
        if not req.spec.get("args"):
            raise errdefs.InvalidArgument(f"exec {req.exec_id!r}: process spec has no args")
        await self._call(ctx, req.container_id, "Task.Exec", {
            "exec_id": req.exec_id, "spec": req.spec, "stdin": req.stdin, "stdout": req.stdout,
            "stderr": req.stderr, "terminal": req.terminal})
        return {}

    @rpc(ResizeRequest)
    async def ResizePty(self, ctx, req: ResizeRequest) -> dict:
        await self._call(ctx, req.container_id, "Task.ResizePty", {"exec_id": req.exec_id, "width": req.width,
                                                                   "height": req.height})
        return {}

    @rpc(CloseIORequest)
    async def CloseIO(self, ctx, req: CloseIORequest) -> dict:
        await self._call(ctx, req.container_id, "Task.CloseIO", {"exec_id": req.exec_id, "stdin": req.stdin})
        return {}

    @rpc(TaskRequest)
    async def Pause(self, ctx, req: TaskRequest) -> dict:
        await self._call(ctx, req.container_id, "Task.Pause", {})
        return {}

    @rpc(TaskRequest)
    async def Resume(self, ctx, req: TaskRequest) -> dict:
        await self._call(ctx, req.container_id, "Task.Resume", {})
        return {}

    @rpc(TaskRequest)
    async def ListPids(self, ctx, req: TaskRequest) -> dict:
        result = await self._call(ctx, req.container_id, "Task.Pids", {})
        return {"processes": list(result or [])}

    @rpc(UpdateRequest)
    async def Update(self, ctx, req: UpdateRequest) -> dict:
        await self._call(ctx, req.container_id, "Task.Update", {"resources": req.resources})
        return {}

    @rpc(ListRequest)
    async def Metrics(self, ctx, req: ListRequest) -> dict:
        flt = filters.parse_any(req.filters)
        out = []
        for task in await self.manager.list(None):
            if not flt.match(filters.MappingAdaptor({"id": task.id, "namespace": task.namespace})):
                continue
            if task.namespace != ctx.namespace and not req.filters:
                continue
            try:
                data = await self.manager.shim_call(task, "Task.Stats", {"id": task.id})
            except errdefs.NotFound:
                continue
            out.append({"timestamp": time.time_ns(), "id": task.id, "namespace": task.namespace, "data": data})
        return {"metrics": out}

    @rpc(ProcessRequest)
    async def Wait(self, ctx, req: ProcessRequest) -> dict:
        task = await self.manager.get(ctx.namespace, req.container_id)
        if task.exit is not None:
            return {"exit_status": task.exit["exit_status"], "exited_at": task.exit["exited_at"]}
        if task.state == DEAD and not req.exec_id:
            # the shim died and its burial is under way: the burial reports the exit
            return await self._buried_exit(task, errdefs.NotFound(f"task {task.id!r}: its shim is gone"))
        try:
            result = await self.manager.shim_call(task, "Task.Wait", {"id": req.container_id,
                                                                      "exec_id": req.exec_id},
                                                  timeout=max(ctx.remaining(), 0.1))
        except (errdefs.Unavailable, errdefs.NotFound) as exc:
            # the shim died during the wait (unavailable), or was found dead just before it (not found)
            if req.exec_id or (isinstance(exc, errdefs.NotFound) and task.state != DEAD):
                raise
            return await self._buried_exit(task, exc)
        return {"exit_status": int(result.get("exit_status", 0)), "exited_at": int(result.get("exited_at", 0))}

    async def _buried_exit(self, task, error: errdefs.DockyardError) -> dict:
        exit_ = await self.manager.wait_buried(task)
        if exit_ is None:
            raise error
        return {"exit_status": exit_["exit_status"], "exited_at": exit_["exited_at"]}


# -- plugins --------------------------------------------------------------------------


@plugin(RUNTIME, "task", requires=(METADATA, EVENT), config=RuntimeConfig)
async def init_runtime(ic: InitContext) -> TaskManager:
    cfg: RuntimeConfig = ic.config
    bundle_root = ic.ensure_state()
    metadata: Metadata = ic.plugins.get_single(METADATA)
    settings = RuntimeSettings(
        bundle_root=bundle_root, daemon_state=ic.daemon_state, daemon_address=ic.address,
        runc_binary=cfg.runc_binary, netns_dir=cfg.netns_dir or os.path.join(ic.daemon_state, "netns"),
        cni_conf_dir=cfg.cni_conf_dir, cni_bin_dirs=tuple(cfg.cni_bin_dirs), cni_network=cfg.cni_network,
        shim_debug=cfg.shim_debug)

    def publish(namespace: str, topic: str, event: dict, timestamp: int) -> None:
        metadata.events.exchange.publish(namespace, topic, event, timestamp=timestamp or None)

    manager = TaskManager(settings, ic.timeouts, publish)
    proxies = await ic.spawn(ChildSpec(name="shims", supervisor=True,
                                       start=lambda: Supervisor("shims", intensity=1000, period=1.0)))
    if cfg.shim_zygote:
        zygotes = Zygotes(bundle_root=bundle_root, daemon_state=ic.daemon_state, daemon_address=ic.address,
                          launch_timeout=ic.timeouts(shimcmd.SHIM_START))
        manager.start_shim = zygotes.start_shim
        await ic.spawn(ChildSpec(name="shim-zygote", start=lambda: ZygoteKeeper(zygotes)))
    shim_state = os.path.join(bundle_root, ".shims")
    manager.table = await ic.spawn(ChildSpec(name="tasks", mailbox_size=1024, start=lambda: TaskTable(
        proxies=proxies, shim_state_dir=shim_state, publish=publish, call_timeout=ic.timeouts(shimcmd.SHIM_CALL),
        connect_timeout=ic.timeouts(shimcmd.SHIM_LOAD), on_gone=manager.shim_gone, recover=manager.recover)))
    ic.export("bundle_root", bundle_root)
    return manager


@plugin(SERVICE, "tasks-service", requires=(RUNTIME, METADATA))
async def init_tasks_service(ic: InitContext) -> TasksService:
    return TasksService(ic.plugins.get_by_id(RUNTIME, "task"), ic.plugins.get_single(METADATA))
