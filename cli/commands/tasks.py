"""``dockyard tasks ls|start|attach|kill|exec|ps|pause|resume|rm|metrics|wait``, as ``ctr tasks``.

Also the task IO of ``run``: FIFOs under ``<state>/fifo/<random>/`` (the daemon's
state dir comes from ``Introspection.Server``), copied by threads; stdin EOF
becomes ``CloseIO``; signals are forwarded (without a TTY) as ctr does; with
``-t`` the terminal goes raw and its size follows SIGWINCH.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from cli.output import format_timestamp, table, to_json
from wire import errdefs

STATUS = {"created": "CREATED", "running": "RUNNING", "stopped": "STOPPED", "paused": "PAUSED",
          "pausing": "PAUSING", "unknown": "UNKNOWN"}
WAIT_FOREVER = 10 * 365 * 24 * 3600.0
IO_DRAIN = 2.0


def register(sub) -> None:
    p = sub.add_parser("tasks", aliases=["task", "t"], help="manage tasks")
    s = p.add_subparsers(dest="tasks_command", required=True)
    ls = s.add_parser("ls", aliases=["list"], help="list tasks")
    ls.add_argument("--quiet", "-q", action="store_true", help="print only the task id")
    ls.set_defaults(run=run_ls)
    st = s.add_parser("start", help="start a container's task")
    st.add_argument("--detach", "-d", action="store_true")
    st.add_argument("--null-io", action="store_true")
    st.add_argument("id")
    st.set_defaults(run=run_start)
    at = s.add_parser("attach", help="attach to the IO of a running task")
    at.add_argument("id")
    at.set_defaults(run=run_attach)
    k = s.add_parser("kill", help="signal a task")
    k.add_argument("--signal", "-s", default="SIGTERM", help="signal name or number")
    k.add_argument("--exec-id", default="", help="process id to signal")
    k.add_argument("--all", "-a", action="store_true", help="send the signal to all processes of the task")
    k.add_argument("ids", nargs="+")
    k.set_defaults(run=run_kill)
    ex = s.add_parser("exec", help="run an extra process in a task")
    ex.add_argument("--exec-id", required=True, help="exec specific id for the process")
    ex.add_argument("--tty", "-t", action="store_true")
    ex.add_argument("--detach", "-d", action="store_true")
    ex.add_argument("--cwd", default="")
    ex.add_argument("--user", "-u", default="", help="uid[:gid]")
    ex.add_argument("--env", action="append", default=[])
    ex.add_argument("id")
    ex.add_argument("args", nargs=argparse.REMAINDER)
    ex.set_defaults(run=run_exec)
    ps = s.add_parser("ps", help="list the processes of a task")
    ps.add_argument("id")
    ps.set_defaults(run=run_ps)
    for name, method in (("pause", "Tasks.Pause"), ("resume", "Tasks.Resume")):
        q = s.add_parser(name, help=f"{name} a task")
        q.add_argument("id")
        q.set_defaults(run=_simple(method))
    rm = s.add_parser("rm", aliases=["delete", "del", "remove"], help="delete tasks")
    rm.add_argument("--force", "-f", action="store_true", help="kill the task first")
    rm.add_argument("--exec-id", default="", help="delete this process of the task")
    rm.add_argument("ids", nargs="+")
    rm.set_defaults(run=run_rm)
    m = s.add_parser("metrics", aliases=["metric"], help="cgroup figures of a task")
    m.add_argument("id")
    m.set_defaults(run=run_metrics)
    w = s.add_parser("wait", help="wait for a task to exit; exits with its status")
    w.add_argument("--exec-id", default="")
    w.add_argument("id")
    w.set_defaults(run=run_wait)


def _simple(method: str):
    def run(ctx, args) -> None:
        ctx.call(method, {"container_id": args.id})

    return run


# -- IO ---------------------------------------------------------------------------------------


class Fifos:
    """The stdio FIFOs of one process: ``<state>/fifo/<random>/<id>-stdin|-stdout|-stderr``."""

    def __init__(self, directory: str, stdin: str, stdout: str, stderr: str) -> None:
        self.directory = directory
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    @classmethod
    def create(cls, state: str, name: str, *, tty: bool) -> "Fifos":
        base = os.path.join(state, "fifo")
        os.makedirs(base, mode=0o700, exist_ok=True)
        directory = os.path.join(base, os.urandom(8).hex())
        os.mkdir(directory, 0o700)
        paths = [os.path.join(directory, f"{name}-{kind}") for kind in ("stdin", "stdout", "stderr")]
        if tty:
            paths[2] = ""
        for path in paths:
            if path:
                os.mkfifo(path, 0o600)
        return cls(directory, *paths)

    def remove(self) -> None:
        if self.directory:
            _remove_tree(self.directory)


def remove_fifo_dir(state: str, process: dict) -> None:
    """Remove the FIFO directory a process used, if it is one of ours (under <state>/fifo)."""
    base = os.path.join(state, "fifo") + os.sep
    for key in ("stdin", "stdout", "stderr"):
        path = process.get(key) or ""
        if path.startswith(base):
            _remove_tree(os.path.dirname(path))
            return


def _remove_tree(path: str) -> None:
    import shutil  # imported here: most task commands never remove FIFOs

    shutil.rmtree(path, ignore_errors=True)


class Attachment:
    """Threads copying between our stdio and a process's FIFOs."""

    def __init__(self, ctx, cid: str, exec_id: str, fifos: Fifos, *, stdin: bool = True) -> None:
        self.ctx, self.cid, self.exec_id, self.fifos = ctx, cid, exec_id, fifos
        self.outputs: list[threading.Thread] = []
        self.with_stdin = stdin

    def start(self) -> None:
        if self.fifos.stdout:
            self.outputs.append(_thread(self._copy_out, self.fifos.stdout, sys.stdout))
        if self.fifos.stderr:
            self.outputs.append(_thread(self._copy_out, self.fifos.stderr, sys.stderr))
        if self.fifos.stdin and self.with_stdin:
            _thread(self._copy_in, self.fifos.stdin)

    @staticmethod
    def _copy_out(path: str, out) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        target = out.buffer if hasattr(out, "buffer") else out
        try:
            while True:
                data = os.read(fd, 65536)
                if not data:
                    break
                target.write(data)
                target.flush()
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)

    def _copy_in(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            return
        try:
            source = sys.stdin.buffer.raw if hasattr(sys.stdin.buffer, "raw") else sys.stdin.buffer
            while True:
                data = source.read(65536)
                if not data:
                    break
                os.write(fd, data)
        except (OSError, ValueError):
            return
        finally:
            os.close(fd)
        try:
            with self.ctx_client() as c:
                c.call("Tasks.CloseIO", {"container_id": self.cid, "exec_id": self.exec_id, "stdin": True})
        except errdefs.DockyardError:
            pass

    def ctx_client(self):
        return new_client(self.ctx)

    def drain(self, timeout: float = IO_DRAIN) -> None:
        for t in self.outputs:
            t.join(timeout)


def _thread(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def new_client(ctx):
    from wire.client import Client

    return Client(ctx.address, namespace=ctx.namespace, timeout=ctx.timeout or 30).connect()


def daemon_state(ctx) -> str:
    return ctx.call("Introspection.Server")["state"]


# -- waiting and signals ------------------------------------------------------------------------


class Waiter:
    """``Tasks.Wait`` on its own connection in a thread, so the main thread can forward signals."""

    def __init__(self, ctx, cid: str, exec_id: str = "") -> None:
        self.result: dict | None = None
        self.error: BaseException | None = None
        self._thread = _thread(self._wait, ctx, cid, exec_id)

    def _wait(self, ctx, cid: str, exec_id: str) -> None:
        try:
            with new_client(ctx) as c:
                self.result = c.call("Tasks.Wait", {"container_id": cid, "exec_id": exec_id}, timeout=WAIT_FOREVER)
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def join(self) -> dict:
        while self._thread.is_alive():
            self._thread.join(0.2)
        if self.error is not None:
            raise self.error
        return self.result or {"exit_status": 255}


FORWARD_EXCLUDED = {signal.SIGCHLD, signal.SIGURG, signal.SIGWINCH, signal.SIGPIPE, signal.SIGKILL, signal.SIGSTOP}


def forward_signals(ctx, cid: str, exec_id: str = "") -> dict:
    """Forward every catchable signal to the process (ctr's ForwardAllSignals); returns old handlers."""
    def handler(signum, _frame):
        try:
            with new_client(ctx) as c:
                c.call("Tasks.Kill", {"container_id": cid, "exec_id": exec_id, "signal": int(signum)})
        except errdefs.DockyardError as exc:
            print(f"dockyard: forward signal {signum}: {exc.message}", file=sys.stderr)

    old = {}
    for sig in signal.valid_signals():
        if sig in FORWARD_EXCLUDED or not isinstance(sig, signal.Signals):
            continue
        try:
            old[sig] = signal.signal(sig, handler)
        except (OSError, ValueError, RuntimeError):
            pass
    return old


def restore_signals(old: dict) -> None:
    for sig, h in old.items():
        try:
            signal.signal(sig, h)
        except (OSError, ValueError, TypeError):
            pass


class RawTerminal:
    """Raw mode on our terminal while a TTY process runs; its size follows ours."""

    def __init__(self, ctx, cid: str, exec_id: str = "") -> None:
        self.ctx, self.cid, self.exec_id = ctx, cid, exec_id
        self.fd = sys.stdin.fileno() if sys.stdin.isatty() else None
        self.saved = None
        self.old_winch = None

    def __enter__(self) -> "RawTerminal":
        if self.fd is None:
            return self
        import termios
        import tty

        self.saved = termios.tcgetattr(self.fd)
        tty.setraw(self.fd)
        self.resize()
        self.old_winch = signal.signal(signal.SIGWINCH, lambda *_: self.resize())
        return self

    def resize(self) -> None:
        if self.fd is None:
            return
        size = os.get_terminal_size(self.fd)
        try:
            with new_client(self.ctx) as c:
                c.call("Tasks.ResizePty", {"container_id": self.cid, "exec_id": self.exec_id,
                                           "width": size.columns, "height": size.lines})
        except errdefs.DockyardError:
            pass

    def __exit__(self, *exc) -> None:
        if self.fd is None or self.saved is None:
            return
        import termios

        termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
        if self.old_winch is not None:
            signal.signal(signal.SIGWINCH, self.old_winch)


# -- running a container's task ------------------------------------------------------------------


def rootfs_mounts(ctx, container: dict) -> list[dict]:
    root = ((container.get("spec") or {}).get("root") or {}).get("path", "")
    if os.path.isabs(root) or not container.get("snapshot_key"):
        return []
    try:
        return ctx.call("Snapshots.Mounts", {"snapshotter": container["snapshotter"],
                                             "key": container["snapshot_key"]})["mounts"]
    except errdefs.NotFound:
        raise errdefs.NotFound(f"snapshot {container['snapshot_key']!r}: not found") from None


def run_task(ctx, container: dict, *, tty: bool, detach: bool, null_io: bool) -> int:
    """Create and start the container's task; unless detached, wait, delete it and return its status."""
    cid = container["id"]
    tty = tty or bool(((container.get("spec") or {}).get("process") or {}).get("terminal"))
    fifos = Fifos("", "", "", "") if null_io else Fifos.create(daemon_state(ctx), cid, tty=tty)
    try:
        ctx.call("Tasks.Create", {"container_id": cid, "rootfs": rootfs_mounts(ctx, container),
                                  "stdin": fifos.stdin, "stdout": fifos.stdout, "stderr": fifos.stderr,
                                  "terminal": tty})
    except BaseException:
        fifos.remove()
        raise
    if detach:
        ctx.call("Tasks.Start", {"container_id": cid})
        return 0
    attachment = Attachment(ctx, cid, "", fifos)
    attachment.start()
    try:
        return _run_attached(ctx, cid, "", tty, attachment, start=True)
    finally:
        fifos.remove()


def _run_attached(ctx, cid: str, exec_id: str, tty: bool, attachment: Attachment, *, start: bool) -> int:
    waiter = Waiter(ctx, cid, exec_id)
    with RawTerminal(ctx, cid, exec_id) if tty else _Nothing():
        old = {} if tty else forward_signals(ctx, cid, exec_id)
        try:
            if start:
                try:
                    ctx.call("Tasks.Start", {"container_id": cid, "exec_id": exec_id})
                except BaseException:
                    _delete_quietly(ctx, cid, exec_id)
                    raise
            status = waiter.join()
        finally:
            restore_signals(old)
        attachment.drain()
    if exec_id:
        _delete_quietly(ctx, cid, exec_id)
    else:
        ctx.call("Tasks.Delete", {"container_id": cid})
    return int(status.get("exit_status", 255))


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _delete_quietly(ctx, cid: str, exec_id: str) -> None:
    try:
        ctx.call("Tasks.DeleteProcess", {"container_id": cid, "exec_id": exec_id})
    except errdefs.DockyardError:
        pass


# -- commands ------------------------------------------------------------------------------------


def run_ls(ctx, args) -> None:
    tasks = ctx.call("Tasks.List")["tasks"]
    if ctx.json:
        to_json(tasks)
    elif args.quiet:
        for t in tasks:
            print(t["container_id"])
    else:
        table(["TASK", "PID", "STATUS"], [[t["container_id"], t["pid"], STATUS.get(t["status"], "UNKNOWN")]
                                          for t in tasks])


def run_start(ctx, args) -> int:
    container = ctx.call("Containers.Get", {"id": args.id})
    return run_task(ctx, container, tty=False, detach=args.detach, null_io=args.null_io)


def run_attach(ctx, args) -> int:
    process = ctx.call("Tasks.Get", {"container_id": args.id})["process"]
    fifos = Fifos("", process.get("stdin", ""), process.get("stdout", ""), process.get("stderr", ""))
    if not (fifos.stdout or fifos.stdin):
        raise errdefs.FailedPrecondition(f"task {args.id!r}: has no IO to attach to")
    attachment = Attachment(ctx, args.id, "", fifos)
    attachment.start()
    waiter = Waiter(ctx, args.id)
    with RawTerminal(ctx, args.id) if process.get("terminal") else _Nothing():
        old = {} if process.get("terminal") else forward_signals(ctx, args.id)
        try:
            status = waiter.join()
        finally:
            restore_signals(old)
        attachment.drain()
    return int(status.get("exit_status", 255))


def parse_signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise errdefs.InvalidArgument(f"signal {text!r}: unknown") from None


def run_kill(ctx, args) -> int:
    sig = parse_signal(args.signal)
    failed = 0
    for cid in args.ids:
        try:
            ctx.call("Tasks.Kill", {"container_id": cid, "exec_id": args.exec_id, "signal": sig, "all": args.all})
        except errdefs.DockyardError as exc:
            print(f"dockyard: kill {cid}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_exec(ctx, args) -> int:
    from oci.spec import merge_env, resolve_user

    container = ctx.call("Containers.Get", {"id": args.id})
    process = dict((container.get("spec") or {}).get("process") or {})
    process["args"] = list(args.args)
    process["terminal"] = bool(args.tty)
    if args.cwd:
        process["cwd"] = args.cwd
    if args.env:
        process["env"] = merge_env(list(process.get("env") or []), list(args.env))
    if args.user:
        uid, gid, extra = resolve_user(args.user, None)
        process["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    fifos = Fifos.create(daemon_state(ctx), args.exec_id, tty=args.tty)
    try:
        ctx.call("Tasks.Exec", {"container_id": args.id, "exec_id": args.exec_id, "spec": process,
                                "stdin": fifos.stdin, "stdout": fifos.stdout, "stderr": fifos.stderr,
                                "terminal": bool(args.tty)})
        if args.detach:
            ctx.call("Tasks.Start", {"container_id": args.id, "exec_id": args.exec_id})
            return 0
        attachment = Attachment(ctx, args.id, args.exec_id, fifos)
        attachment.start()
        return _run_attached(ctx, args.id, args.exec_id, args.tty, attachment, start=True)
    finally:
        if not args.detach:
            fifos.remove()


def run_ps(ctx, args) -> None:
    processes = ctx.call("Tasks.ListPids", {"container_id": args.id})["processes"]
    if ctx.json:
        to_json(processes)
        return
    table(["PID", "INFO"], [[p["pid"], p.get("exec_id") or "-"] for p in processes])


def run_rm(ctx, args) -> int:
    state = None
    failed = 0
    for cid in args.ids:
        try:
            if args.exec_id:
                ctx.call("Tasks.DeleteProcess", {"container_id": cid, "exec_id": args.exec_id})
                continue
            process = ctx.call("Tasks.Get", {"container_id": cid})["process"]
            if process["status"] not in ("stopped", "created", "unknown"):
                if not args.force:
                    raise errdefs.FailedPrecondition(
                        f"task must be stopped before deletion: {process['status']}")
                ctx.call("Tasks.Kill", {"container_id": cid, "signal": int(signal.SIGKILL), "all": True})
                with new_client(ctx) as c:
                    c.call("Tasks.Wait", {"container_id": cid}, timeout=30)
            ctx.call("Tasks.Delete", {"container_id": cid})
            state = state or daemon_state(ctx)
            remove_fifo_dir(state, process)
        except errdefs.DockyardError as exc:
            print(f"dockyard: unable to delete {cid}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_metrics(ctx, args) -> None:
    metrics = ctx.call("Tasks.Metrics", {"filters": [f"id=={args.id}"]})["metrics"]
    if not metrics:
        raise errdefs.NotFound(f"task {args.id!r}: not found")
    m = metrics[0]
    if ctx.json:
        to_json(m)
        return
    table(["ID", "TIMESTAMP"], [[m["id"], format_timestamp(m["timestamp"])]])
    print()
    data = m.get("data") or {}
    rows = [[k, v] for k, v in sorted(data.items()) if not isinstance(v, (dict, list))]
    table(["METRIC", "VALUE"], rows)


def run_wait(ctx, args) -> int:
    with new_client(ctx) as c:
        result = c.call("Tasks.Wait", {"container_id": args.id, "exec_id": args.exec_id}, timeout=WAIT_FOREVER)
    return int(result.get("exit_status", 255))
