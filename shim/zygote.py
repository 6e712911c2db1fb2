"""The shim zygote: a long-lived fork server that makes shims without a Python start-up each.

    dockyard-shim-runc-v1 -address DAEMON_SOCK -socket PATH zygote   (cwd: its work dir)

``boot`` detaches the zygote exactly as ``start`` detaches a shim (own session,
double fork, nobody's child) and prints ``{"address": "unix://PATH"}``; a zygote
already answering on PATH is kept.  The zygote imports everything a shim needs,
freezes the GC (children share those pages), and serves one JSON line per
connection on PATH (0600), answering one JSON line:

- ``{"op": "start", "namespace", "address", "id", "bundle", "debug"}`` → the
  bootstrap dict ``start`` prints, or ``{"error": "..."}``.  A double fork (own
  session, orphaned like any shim, so it outlives the zygote) does ``start``'s
  work itself: the group rule, the lock, the socket, then it serves.
- ``{"op": "ping"}`` → ``{"pid", "version", "fresh"}``; ``fresh`` is false once
  the code it imported changed on disk (the daemon then replaces it).  The
  process that pings (SO_PEERCRED) becomes its owner.
- ``{"op": "stop"}`` → ``{"stopping": true}``, and it exits.

It also exits when its socket is removed or replaced, and when its owner has
been gone for ``ORPHAN_GRACE`` with nobody pinging meanwhile (a daemon killed
and never restarted).  Single-threaded: the only children it ever has are the
short-lived forks, reaped in its loop.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time

from . import main as shim

REQUEST_MAX = 64 * 1024
REQUEST_TIMEOUT = 2.0  # seconds a client has to send its request line
POLL_INTERVAL = 1.0  # seconds between reaps and socket checks while idle
ORPHAN_GRACE = 10.0  # seconds without an owner (a daemon that pinged) before the zygote exits
START_FIELDS = ("namespace", "address", "id", "bundle")
LOG_NAME = "zygote.log"
PID_NAME = "zygote.pid"


_kept: list = []  # what the zygote holds for its whole life (frozen with everything else)


class BadRequest(Exception):
    pass


class Owner:
    """The process that pinged last (the daemon), watched through a pidfd."""

    def __init__(self) -> None:
        self.fd = -1
        self.gone_at: float | None = time.monotonic()  # a new zygote waits for its first ping

    def adopt(self, pid: int) -> None:
        self.close()
        try:
            self.fd = os.pidfd_open(pid)
        except OSError:  # it is gone already
            return
        self.gone_at = None

    def check(self, readable: list) -> None:
        if self.fd >= 0 and self.fd in readable:  # a pidfd turns readable when its process exits
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.gone_at = time.monotonic()

    def abandoned(self) -> bool:
        return self.gone_at is not None and time.monotonic() - self.gone_at > ORPHAN_GRACE


def boot(flags: dict) -> None:
    """The ``zygote`` action: make sure a zygote serves ``-socket``; print its address."""
    path = flags.get("socket") or ""
    if not os.path.isabs(path):
        raise shim.UsageError("zygote needs -socket with an absolute path")
    if not flags["address"]:
        raise shim.UsageError("zygote needs -address (the daemon socket)")
    workdir = os.getcwd()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    lock_fd = shim.lock(os.path.dirname(path))
    try:
        if not shim.answers(path):
            listener = shim.listen(path)
            shim.spawn_detached(lambda ready_fd: _serve(listener, flags, path, workdir, ready_fd), lock_fd,
                                f"the shim zygote did not come up (see {os.path.join(workdir, LOG_NAME)})")
            listener.close()
    finally:
        os.close(lock_fd)
    sys.stdout.write(json.dumps({"address": f"unix://{path}"}) + "\n")
    sys.stdout.flush()


# -- the zygote process ---------------------------------------------------------------------


def _serve(listener: socket.socket, flags: dict, path: str, workdir: str, ready_fd: int) -> None:
    shim.detach_stdio(os.path.join(workdir, LOG_NAME))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _preload()
    from .title import set_title

    set_title(f"dockyard-shim-runc-v1 zygote {flags['address']}")
    fingerprint = code_fingerprint()
    with open(os.path.join(workdir, PID_NAME), "w") as fh:
        fh.write(str(os.getpid()))
    ident = os.stat(path).st_ino
    owner = Owner()
    gc.collect()
    _kept.append(_fill_pools())
    gc.freeze()  # what is here now is never traversed again: the children's copies stay shared
    os.write(ready_fd, str(os.getpid()).encode())
    os.close(ready_fd)
    try:
        while True:
            watched = [listener] + ([owner.fd] if owner.fd >= 0 else [])
            readable = select.select(watched, [], [], POLL_INTERVAL)[0]
            owner.check(readable)
            _reap()
            if listener in readable:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                with conn:
                    if not _handle(conn, listener, owner, fingerprint):
                        return
            elif not _still_ours(path, ident) or owner.abandoned():
                return
    finally:
        listener.close()
        if _still_ours(path, ident):
            os.unlink(path)


def _preload() -> None:
    """Import what a shim server and a start run need, so every fork finds it loaded."""
    import fcntl  # noqa: F401  (start's lock, io's window size)
    import termios  # noqa: F401
    import traceback  # noqa: F401

    from . import events, group, io, libc, loop, mount, oom, process, reaper, runc, server, service  # noqa: F401
    from .title import set_title

    libc.preload()

    set_title("dockyard-shim-runc-v1 zygote")  # loads the extension once


def _fill_pools() -> list:
    """Fill the free blocks of pymalloc's part-used pools (~75 KiB less private memory per shim).

    A fork's new small objects then go to fresh pages of its own instead of
    copying one shared page per object.  The free counts per size class come
    from ``sys._debugmallocstats`` (it writes to fd 2, borrowed for a moment).
    """
    r, w = os.pipe()
    saved = os.dup(2)
    os.dup2(w, 2)
    os.close(w)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    with os.fdopen(r, "rb") as fh:
        stats = fh.read().decode(errors="replace")
    ballast = []
    for line in stats.splitlines():  # "class  size  num pools  blocks in use  avail blocks"
        fields = line.split()
        if len(fields) == 5 and all(f.isdigit() for f in fields) and int(fields[1]) >= 48:
            size, avail = int(fields[1]), int(fields[4])
            ballast.extend(bytes(size - 33) for _ in range(avail))  # a bytes object of n bytes takes 33 + n
    return ballast


def code_fingerprint() -> tuple:
    """(file, mtime, size) of every shim, wire and msgpack module this process imported."""
    found = []
    for name, module in list(sys.modules.items()):
        if not name.split(".")[0] in ("shim", "wire", "msgpack"):
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            found.append((path, 0, -1))
            continue
        found.append((path, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


def _still_ours(path: str, ident: int) -> bool:
    try:
        return os.stat(path).st_ino == ident
    except OSError:
        return False


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _handle(conn: socket.socket, listener: socket.socket, owner: Owner, fingerprint: tuple) -> bool:
    """Serve one connection; False when the zygote should exit."""
    try:
        request = _read_request(conn)
        op = request.get("op")
        if op == "start":
            flags = _start_flags(request)
            _fork_start(conn, listener, owner, flags)
            return True
        if op == "ping":
            owner.adopt(_peer_pid(conn))
            _reply(conn, {"pid": os.getpid(), "version": shim.VERSION, "fresh": code_fingerprint() == fingerprint})
            return True
        if op == "stop":
            _reply(conn, {"stopping": True})
            return False
        raise BadRequest(f"unknown op {op!r} (start, ping or stop)")
    except BadRequest as e:
        _reply(conn, {"error": f"zygote request: {e}"})
    except OSError as e:  # the client went away or a fork failed: the zygote goes on
        _reply(conn, {"error": f"zygote: {e}"})
    return True


def _peer_pid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def _read_request(conn: socket.socket) -> dict:
    conn.settimeout(REQUEST_TIMEOUT)
    data = b""
    try:
        while b"\n" not in data:
            chunk = conn.recv(REQUEST_MAX)
            if not chunk:
                break
            data += chunk
            if len(data) > REQUEST_MAX:
                raise BadRequest(f"longer than {REQUEST_MAX} bytes")
    except socket.timeout:
        raise BadRequest(f"no request line within {REQUEST_TIMEOUT:g}s") from None
    try:
        request = json.loads(data.partition(b"\n")[0])
    except ValueError:
        raise BadRequest("not a JSON line") from None
    if not isinstance(request, dict):
        raise BadRequest("not a JSON object")
    return request


def _start_flags(request: dict) -> dict:
    flags: dict = {"debug": bool(request.get("debug", False))}
    for name in START_FIELDS:
        value = request.get(name)
        if not isinstance(value, str) or not value or "\0" in value:
            raise BadRequest(f"start: {name} must be a non-empty string")
        flags[name] = value
    if not os.path.isabs(flags["bundle"]) or not os.path.isdir(flags["bundle"]):
        raise BadRequest(f"start: bundle {flags['bundle']!r} is not an absolute path to a directory")
    return flags


def _fork_start(conn: socket.socket, listener: socket.socket, owner: Owner, flags: dict) -> None:
    """Fork the shim-to-be (double fork, own session, as ``start``); the zygote does not wait for it.

    The intermediate fork does nothing but detach: every page the forks write
    is paid by the shim, so only the shim itself works.
    """
    conn.setblocking(True)
    if os.fork() != 0:
        return
    code = 1
    try:
        listener.close()
        if owner.fd >= 0:
            os.close(owner.fd)
        os.setsid()
        if os.fork() != 0:
            code = 0
            return
        code = _become_shim(conn, flags)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _become_shim(conn: socket.socket, flags: dict) -> int:
    """In the detached fork: join the group's shim or serve as it; the answer goes back on ``conn``."""
    answered = []

    def answer(reply: dict) -> None:
        answered.append(True)
        _reply(conn, reply)
        conn.close()

    os.environ["NAMESPACE"] = flags["namespace"]
    try:
        os.chdir(flags["bundle"])
        shim.serve_here(flags, answer)
    except Exception as e:
        if answered:
            raise
        answer({"error": str(getattr(e, "message", None) or e)})
        return 1
    return 0


def _reply(conn: socket.socket, answer: dict) -> None:
    try:
        conn.settimeout(REQUEST_TIMEOUT)
        conn.sendall((json.dumps(answer) + "\n").encode())
    except OSError:
        pass
