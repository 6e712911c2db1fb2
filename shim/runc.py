"""The runc command line, run as child processes of the shim with deadlines.

Every command runs under ``--log <bundle>/log.json --log-format json``; a failure is
reported with runc's own message (the last error in that log, else its stderr).
Commands are started with posix_spawn and awaited through the reaper: the loop
never blocks on runc.
"""

from __future__ import annotations

import json
import os
import signal
import time

from wire import errdefs

# Seconds a runc command may take before the shim kills it.
TIMEOUT_LIFECYCLE = 60.0  # create, start, exec, delete, update, pause, resume, kill
TIMEOUT_QUERY = 10.0  # state, ps, events --stats

# Signals the shim ignores or handles must be default again in runc and the container.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Runc:
    """One runc binary + state root, logging into one bundle's log.json."""

    def __init__(self, loop, reaper, *, binary: str = "runc", root: str, log_path: str,
                 systemd_cgroup: bool = False) -> None:
        self.loop = loop
        self.reaper = reaper
        self.binary = binary or "runc"
        self.root = root
        self.log_path = log_path
        self.systemd_cgroup = systemd_cgroup

    def argv(self, *args: str) -> list[str]:
        argv = [self.binary, "--root", self.root, "--log", self.log_path, "--log-format", "json"]
        if self.systemd_cgroup:
            argv.append("--systemd-cgroup")
        return argv + list(args)

    # -- commands -------------------------------------------------------------------

    async def create(self, cid: str, bundle: str, *, pid_file: str, console_socket: str | None,
                     stdio: tuple[int, int, int], deadline: float | None = None) -> None:
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        await self.run(args + [cid], stdio=stdio, what=f"create {cid}", deadline=deadline)

    async def start(self, cid: str, deadline: float | None = None) -> None:
        await self.run(["start", cid], what=f"start {cid}", deadline=deadline)

    async def exec(self, cid: str, *, process_file: str, pid_file: str, console_socket: str | None,
                   stdio: tuple[int, int, int], deadline: float | None = None) -> None:
        args = ["exec", "--detach", "--process", process_file, "--pid-file", pid_file]
        if console_socket:
            args += ["--console-socket", console_socket]
        await self.run(args + [cid], stdio=stdio, what=f"exec in {cid}", deadline=deadline)

    async def delete(self, cid: str, *, force: bool = False, deadline: float | None = None) -> None:
        args = ["delete"] + (["--force"] if force else []) + [cid]
        await self.run(args, what=f"delete {cid}", deadline=deadline)

    async def kill(self, cid: str, sig: int, *, all_: bool = False, deadline: float | None = None) -> None:
        args = ["kill"] + (["--all"] if all_ else []) + [cid, str(sig)]
        await self.run(args, what=f"kill {cid}", deadline=deadline)

    async def pause(self, cid: str, deadline: float | None = None) -> None:
        await self.run(["pause", cid], what=f"pause {cid}", deadline=deadline)

    async def resume(self, cid: str, deadline: float | None = None) -> None:
        await self.run(["resume", cid], what=f"resume {cid}", deadline=deadline)

    async def update(self, cid: str, resources_file: str, deadline: float | None = None) -> None:
        await self.run(["update", "--resources", resources_file, cid], what=f"update {cid}", deadline=deadline)

    async def ps(self, cid: str, deadline: float | None = None) -> list[int]:
        out = await self.run(["ps", "--format", "json", cid], what=f"ps {cid}", capture=True,
                             timeout=TIMEOUT_QUERY, deadline=deadline)
        return json.loads(out or b"[]") or []

    async def stats(self, cid: str, deadline: float | None = None) -> dict:
        out = await self.run(["events", "--stats", cid], what=f"stats {cid}", capture=True,
                             timeout=TIMEOUT_QUERY, deadline=deadline)
        return json.loads(out).get("data") or {}

    # -- machinery ------------------------------------------------------------------

    async def run(self, args: list[str], *, what: str, stdio: tuple[int, int, int] | None = None,
                  capture: bool = False, timeout: float = TIMEOUT_LIFECYCLE,
                  deadline: float | None = None) -> bytes:
        """Run ``runc <args>``; its stdout when ``capture``. Raises runc's message on failure."""
        limit = timeout if deadline is None else max(0.0, min(timeout, deadline - time.monotonic()))
        log_offset = _size(self.log_path)
        call = _Call(self.loop, self.reaper, self.argv(*args), stdio=stdio, capture=capture)
        timer = self.loop.call_later(limit, call.kill)
        try:
            code = await call.done
        finally:
            timer.cancel()
        if call.killed:
            raise errdefs.DeadlineExceeded(f"runc {what}: no answer within {limit:.1f}s")
        if code != 0:
            message = _last_error(self.log_path, log_offset) or call.stderr_text() or f"exit status {code}"
            raise runc_error(f"runc {what}: {message}")
        return bytes(call.stdout)


def runc_error(message: str) -> errdefs.DockyardError:
    """runc's failures become typed errors; the message is runc's own."""
    lowered = message.lower()
    if "does not exist" in lowered or "container not found" in lowered:
        return errdefs.NotFound(message)
    if "not running" in lowered or "not paused" in lowered or "already exists" in lowered:
        return errdefs.FailedPrecondition(message)
    return errdefs.Unknown(message)


class _Call:
    """One runc child: its exit status, captured stdout and stderr."""

    def __init__(self, loop, reaper, argv: list[str], *, stdio, capture: bool) -> None:
        self.loop = loop
        self.done = loop.create_future()
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.killed = False
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        to_close = [devnull]
        fds = list(stdio) if stdio is not None else [devnull, devnull, devnull]
        readers: list[tuple[int, bytearray]] = []
        if stdio is None:
            if capture:
                r, w = os.pipe2(os.O_CLOEXEC)
                fds[1] = w
                to_close.append(w)
                readers.append((r, self.stdout))
            r, w = os.pipe2(os.O_CLOEXEC)
            fds[2] = w
            to_close.append(w)
            readers.append((r, self.stderr))
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
        try:
            self.pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions,
                                       setsigdef=_RESET_SIGNALS, setsigmask=())
        except OSError as e:
            for fd, _ in readers:
                os.close(fd)
            raise errdefs.NotFound(f"runc binary {argv[0]!r}: {e.strerror}") from None
        finally:
            for fd in to_close:
                os.close(fd)
        reaper.watch(self.pid, self._exited)
        self._readers = readers
        for fd, buf in readers:
            os.set_blocking(fd, False)
            loop.watch(fd, 0x001, lambda _ev, fd=fd, buf=buf: _drain(fd, buf) or loop.unwatch(fd))

    def _exited(self, code: int, _at: int) -> None:
        # Everything runc wrote is in the pipes now; a grandchild holding them must not stall us.
        for fd, buf in self._readers:
            _drain(fd, buf)
            self.loop.unwatch(fd)
            os.close(fd)
        self._readers = []
        self.done.set_result(code)

    def kill(self) -> None:
        if not self.done.done():
            self.killed = True
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace").strip().splitlines()[-1:][0] if self.stderr.strip() else ""


def _drain(fd: int, buf: bytearray) -> bool:
    """Read what is there; True while the pipe is still open (False at EOF)."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buf += chunk


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _last_error(log_path: str, offset: int) -> str:
    """The last error-level message runc wrote to its JSON log after ``offset``."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            lines = fh.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic") and entry.get("msg"):
            return str(entry["msg"])
    return ""
