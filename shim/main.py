"""``dockyard-shim-runc-v1``: flags, the ``start`` and ``delete`` modes, and the serving process.

    dockyard-shim-runc-v1 -namespace NS -address DAEMON_SOCK -id ID [-debug] start
    dockyard-shim-runc-v1 -namespace NS -address DAEMON_SOCK -id ID -bundle PATH delete
    dockyard-shim-runc-v1 -address DAEMON_SOCK -socket PATH zygote

``start`` (cwd = bundle) joins the group's running shim when its socket answers;
otherwise it binds the socket itself, double-forks the server into its own
session, and prints the bootstrap JSON once the socket is listening.
``zygote`` starts the fork server (``zygote.py``) that does what ``start`` does
without a Python start-up per shim.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time

from . import group as grp

VERSION = "dockyard-shim-runc-v1 0.1.0 (shim API 3)"
LOCK_TIMEOUT = 10.0  # seconds to wait for a concurrent start of the same group
DELETE_RUNC_TIMEOUT = 10.0
READY_TIMEOUT = 10.0  # seconds for a new server to report ready
VALUE_FLAGS = ("namespace", "address", "id", "bundle", "publish-binary", "socket")
BOOL_FLAGS = ("debug", "v", "version")


class UsageError(Exception):
    pass


def parse_args(argv: list[str]) -> tuple[dict, str]:
    """Go-style flags (``-name value`` or ``-name=value``) then one action word."""
    flags: dict = {"namespace": "", "address": "", "id": "", "bundle": "", "debug": False}
    action = ""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg.lstrip("-").partition("=")
            if name in BOOL_FLAGS:
                flags[name] = value.lower() not in ("false", "0") if eq else True
            elif name in VALUE_FLAGS:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: -{name}")
                    value = argv[i]
                flags[name] = value
            else:
                raise UsageError(f"flag provided but not defined: -{name}")
        elif action:
            raise UsageError(f"unexpected argument {arg!r}")
        else:
            action = arg
        i += 1
    return flags, action


def main(argv: list[str] | None = None) -> None:
    try:
        flags, action = parse_args(sys.argv[1:] if argv is None else argv)
        if flags.get("v") or flags.get("version"):
            print(VERSION)
            return
        if action == "zygote":
            from .zygote import boot

            boot(flags)
            return
        if not flags["namespace"]:
            raise UsageError("shim namespace cannot be empty")
        if not flags["id"]:
            raise UsageError("shim id cannot be empty")
        if action == "start":
            start(flags)
        elif action == "delete":
            delete(flags)
        else:
            raise UsageError(f"unknown action {action!r} (start or delete)")
    except UsageError as e:
        sys.stderr.write(f"dockyard-shim-runc-v1: {e}\n")
        sys.exit(2)
    except Exception as e:  # one line on stderr, non-zero exit: the daemon shows it
        sys.stderr.write(f"dockyard-shim-runc-v1: {getattr(e, 'message', None) or e}\n")
        sys.exit(1)


# -- start --------------------------------------------------------------------------------


def start(flags: dict) -> None:
    sys.stdout.write(json.dumps(launch(flags)) + "\n")
    sys.stdout.flush()


def launch(flags: dict) -> dict:
    """What ``start`` does: the bootstrap dict of the group's shim (started detached if none answers)."""
    bundle, group, path = _where(flags)
    lock_fd = lock(os.path.dirname(path))
    try:
        if not answers(path):
            listener = listen(path)
            spawn_detached(lambda ready_fd: _serve(listener, flags, bundle, group, path, lambda: _ready(ready_fd)),
                           lock_fd, f"the shim server did not come up (see {os.path.join(bundle, 'shim.log')})")
            listener.close()
    finally:
        os.close(lock_fd)
    return grp.bootstrap(path)


def serve_here(flags: dict, ready) -> None:
    """``launch`` for a process that is already detached (a zygote's fork): it becomes the server.

    ``ready(bootstrap)`` is called once: at once when the group's shim answers
    (then this returns), else when this process serves (the lock held till then).
    """
    bundle, group, path = _where(flags)
    lock_fd = lock(os.path.dirname(path))
    try:
        if answers(path):
            ready(grp.bootstrap(path))
            return
        listener = listen(path)
    except BaseException:
        os.close(lock_fd)
        raise

    def serving() -> None:
        os.close(lock_fd)
        ready(grp.bootstrap(path))

    _serve(listener, flags, bundle, group, path, serving)


def _where(flags: dict) -> tuple[str, str, str]:
    """(bundle, group, socket path) of a start; the socket's directory made."""
    bundle = os.path.abspath(flags["bundle"] or os.getcwd())
    group = grp.group_of(bundle, flags["id"])
    path = grp.socket_path(bundle, flags["address"], flags["namespace"], group)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    return bundle, group, path


def lock(directory: str) -> int:
    """flock the socket dir: check-then-bind of a group socket is one step across starts."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise TimeoutError(f"shim socket dir {directory!r}: another start holds its lock") from None
            time.sleep(0.01)


def answers(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def listen(path: str) -> socket.socket:
    try:
        os.unlink(path)  # stale: nobody answered on it
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


def spawn_detached(serve, lock_fd: int, not_ready: str) -> None:
    """Double fork: ``serve(ready_fd)`` runs orphaned in its own session, nobody's child to wait for.

    Returns once the server reported ready by writing to ``ready_fd``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    first = os.fork()
    if first == 0:
        try:
            os.close(lock_fd)  # the lock belongs to this start only
            os.close(ready_r)
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            serve(ready_w)
        except BaseException:
            import traceback

            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(ready_w)
    try:
        os.waitpid(first, 0)
        import select

        if not select.select([ready_r], [], [], READY_TIMEOUT)[0] or not os.read(ready_r, 64):
            raise RuntimeError(not_ready)
    finally:
        os.close(ready_r)


def _ready(ready_fd: int) -> None:
    os.write(ready_fd, str(os.getpid()).encode())
    os.close(ready_fd)


def detach_stdio(log_path: str) -> None:
    """A detached process's stdio: stdin and stdout on /dev/null, stderr appended to ``log_path``; cwd /."""
    devnull = os.open(os.devnull, os.O_RDWR)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    os.chdir("/")


def _serve(listener: socket.socket, flags: dict, bundle: str, group: str, path: str, ready) -> None:
    """Become the shim server on ``listener``; ``ready()`` once set up, then serve until shut down."""
    detach_stdio(os.path.join(bundle, "shim.log"))
    from .title import set_title

    set_title(f"dockyard-shim-runc-v1 {flags['namespace']}/{group} {flags['address']}")
    from .loop import Loop
    from .reaper import Reaper, become_subreaper
    from .server import Server
    from .service import TaskService

    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # no KeyboardInterrupt in a daemon; SIGTERM still ends it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    become_subreaper()
    _raise_oom_score()
    with open(os.path.join(bundle, "shim.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    loop = Loop()
    service = TaskService(loop, lambda on_exit: Reaper(loop, on_exit), namespace=flags["namespace"],
                          console_dir=os.path.dirname(path), on_shutdown=loop.stop)
    server = Server(loop, listener, service)
    ident = os.stat(path).st_ino
    ready()
    loop.run()
    server.close()
    try:
        if os.stat(path).st_ino == ident:
            os.unlink(path)
    except OSError:
        pass


def _raise_oom_score() -> None:
    """The shim goes before the daemon under memory pressure (containerd: parent + 1)."""
    try:
        with open(f"/proc/{os.getppid()}/oom_score_adj") as fh:
            parent = int(fh.read())
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write(str(min(parent + 1, 1000)))
    except OSError:
        pass


# -- delete ------------------------------------------------------------------------------


def delete(flags: dict) -> None:
    """Clean up after a dead shim: force-delete the runc container, unmount the rootfs, report."""
    from .events import TOPIC_EXIT, read_outbox
    from .mount import unmount_all

    bundle = os.path.abspath(flags["bundle"] or os.getcwd())
    cid = flags["id"]
    options = grp.read_json(os.path.join(bundle, "options.json"))
    runc = options.get("binary_name") or "runc"
    root = options.get("root") or os.path.join("/run/dockyard/runc", flags["namespace"])
    argv = [runc, "--root", root, "--log", os.path.join(bundle, "log.json"), "--log-format", "json",
            "delete", "--force", cid]
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        pid = os.posix_spawnp(runc, argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, n) for n in (0, 1, 2)])
        os.close(devnull)
        deadline = time.monotonic() + DELETE_RUNC_TIMEOUT
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                break
            time.sleep(0.005)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
    unmount_all(os.path.join(bundle, "rootfs"))
    try:
        with open(os.path.join(bundle, "init.pid")) as fh:
            init_pid = int(fh.read().strip() or 0)
    except (OSError, ValueError):
        init_pid = 0
    status, exited_at = 128 + 9, time.time_ns()
    for env in read_outbox(bundle):  # the shim saw the init exit before it died
        event = env.get("event") or {}
        if env.get("topic") == TOPIC_EXIT and event.get("id") == cid and event.get("container_id") == cid:
            status, exited_at = event.get("exit_status", status), event.get("exited_at", exited_at)
    if flags["address"]:
        path = grp.socket_path(bundle, flags["address"], flags["namespace"], grp.group_of(bundle, cid))
        if os.path.exists(path) and not answers(path):
            try:
                os.unlink(path)
            except OSError:
                pass
    sys.stdout.write(json.dumps({"pid": init_pid, "exit_status": status, "exited_at": exited_at}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
