"""Shim starts through a fork server: the shim binary's ``zygote`` mode, ``start`` as the fallback.

A shim start costs a Python start-up (~0.15 s of CPU); a fork of a zygote that
has imported the shim costs a few ms, and its children share the imported pages.
One zygote per (daemon, shim binary): socket ``<state>/s/zygote-<hex>`` (0600),
work dir ``<bundle root>/.zygote/<hex>`` (its log and pid).  ``start_shim`` has
``shimcmd.start``'s signature and result: it asks the zygote, starting one on
first use, and runs ``start`` itself when the zygote cannot be used (so a
broken zygote makes starts slower, never failed).

The zygote is detached like a shim: a daemon kill -9 leaves it serving and the
next daemon adopts it (by pinging it) if its code is unchanged (``fresh``), else
stops it and starts anew; one nobody adopts exits by itself.  ``stop`` (clean
daemon shutdown) stops every zygote of this daemon.  Shims never depend on it:
they are nobody's children.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time

import attrs
import trio

from actors.core import Actor
from wire import errdefs

from . import binary as binaries
from . import shimcmd

log = logging.getLogger("dockyard.runtime.zygote")

ZYGOTE_DIR = ".zygote"
SOCKET_PREFIX = "zygote-"
FALLBACK_SOCKET_DIR = "/run/dockyard-shim"  # as the shim's own sockets, when <state>/s/… is too long
SUN_PATH_MAX = 107
REPLY_MAX = 64 * 1024
PING_TIMEOUT = 2.0
STOP_TIMEOUT = 2.0
DEFAULT_RUNTIME = "io.dockyard.runc.v1"  # its zygote is looked for at daemon start
RETRY_AFTER = 30.0  # seconds an unusable zygote is left alone (starts use ``start`` meanwhile)


class ZygoteUnusable(Exception):
    """The zygote did not answer (gone, wedged, or it said something we cannot read)."""


@attrs.define(eq=False)
class Zygote:
    binary: str
    path: str  # its socket
    workdir: str
    lock: trio.Lock = attrs.Factory(trio.Lock)
    pid: int = 0  # 0: not known to be serving
    retry_at: float = 0.0


class Zygotes:
    """The daemon's zygotes, one per shim binary, started on first use."""

    def __init__(self, *, bundle_root: str, daemon_state: str, daemon_address: str, launch_timeout: float) -> None:
        self.bundle_root = bundle_root
        self.socket_dir = os.path.join(daemon_state, "s")
        self.daemon_address = daemon_address
        self.launch_timeout = launch_timeout
        self.zygotes: dict[str, Zygote] = {}
        self.forked = 0
        self.fallbacks = 0
        self.launched = 0

    def statistics(self) -> dict:
        return {"zygotes": {z.binary: z.pid for z in self.zygotes.values()}, "forked": self.forked,
                "fallbacks": self.fallbacks, "launched": self.launched}

    def zygote_for(self, binary: str) -> Zygote:
        z = self.zygotes.get(binary)
        if z is None:
            key = _digest(f"{self.daemon_address}\0{binary}")
            path = os.path.join(self.socket_dir, SOCKET_PREFIX + key)
            if len(os.fsencode(path)) > SUN_PATH_MAX:
                path = os.path.join(FALLBACK_SOCKET_DIR, SOCKET_PREFIX + key)
            z = self.zygotes[binary] = Zygote(binary=binary, path=path,
                                              workdir=os.path.join(self.bundle_root, ZYGOTE_DIR, key))
        return z

    # -- shim starts ----------------------------------------------------------------------

    async def start_shim(self, binary: str, bundle: str, namespace: str, cid: str, daemon_address: str, *,
                         timeout: float, debug: bool = False) -> dict:
        """As ``shimcmd.start``: the bootstrap dict of the (possibly shared) shim serving ``cid``."""
        what = f"start shim for task {cid!r}"
        z = self.zygote_for(binary)
        deadline = trio.current_time() + timeout
        if time.monotonic() >= z.retry_at:
            request = {"op": "start", "namespace": namespace, "address": daemon_address, "id": cid,
                       "bundle": bundle, "debug": debug}
            try:
                answer = await self._ask_forking(z, request, timeout / 2)
            except ZygoteUnusable as exc:
                z.retry_at = time.monotonic() + RETRY_AFTER
                log.warning("shim zygote %s unusable (%s): using start for %gs", z.path, exc, RETRY_AFTER)
            else:
                if "error" in answer:
                    raise errdefs.Unavailable(f"{what}: {answer['error']}")
                self.forked += 1
                return shimcmd.parse_bootstrap(json.dumps(answer).encode(), what)
        self.fallbacks += 1
        return await shimcmd.start(binary, bundle, namespace, cid, daemon_address,
                                   timeout=max(deadline - trio.current_time(), timeout / 2), debug=debug)

    async def _ask_forking(self, z: Zygote, request: dict, timeout: float) -> dict:
        """Ask the zygote, (re)starting it once if it does not answer."""
        deadline = trio.current_time() + timeout
        for attempt in (1, 2):
            await self._ensure(z, deadline)
            try:
                return await _request(z.path, request, deadline - trio.current_time())
            except ZygoteUnusable:
                z.pid = 0
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -- zygote life ----------------------------------------------------------------------

    async def _ensure(self, z: Zygote, deadline: float) -> None:
        with trio.move_on_at(deadline):
            async with z.lock:  # one launch at a time; the other starts wait for it
                if z.pid:
                    return
                answer = await _ping(z.path)
                if answer is not None and answer.get("fresh"):
                    z.pid = int(answer.get("pid") or 0)  # a previous daemon's, same code: adopted
                    return
                if answer is not None:  # its code changed on disk since it started
                    log.info("shim zygote %s runs old code: replacing it", z.path)
                    await _stop_one(z.path, int(answer.get("pid") or 0))
                await self._launch(z, deadline)
                return
        raise ZygoteUnusable("no zygote serving within the start's deadline")

    async def _launch(self, z: Zygote, deadline: float) -> None:
        timeout = max(0.0, min(self.launch_timeout, deadline - trio.current_time()))
        await trio.to_thread.run_sync(_make_dir, z.workdir)
        args = [z.binary, "-address", self.daemon_address, "-socket", z.path, "zygote"]
        try:
            await shimcmd.run(args, z.workdir, timeout, f"start shim zygote {z.binary}", "")
        except errdefs.DockyardError as exc:
            raise ZygoteUnusable(exc.message) from None
        answer = await _ping(z.path)
        if answer is None or not answer.get("fresh"):
            raise ZygoteUnusable("the zygote started but does not answer")
        z.pid = int(answer.get("pid") or 0)
        self.launched += 1
        log.info("shim zygote for %s serving at %s (pid %d)", z.binary, z.path, z.pid)

    async def sweep(self) -> None:
        """At daemon start: stop the zygotes a previous daemon left that run old code; the ping adopts
        the others (an unadopted zygote exits a while after its daemon died)."""
        paths = await trio.to_thread.run_sync(self._listed)
        try:
            paths.append(self.zygote_for(binaries.resolve(DEFAULT_RUNTIME)).path)  # maybe outside <state>/s
        except errdefs.DockyardError:
            pass
        for path in sorted(set(paths)):
            answer = await _ping(path)
            if answer is not None and not answer.get("fresh"):
                await _stop_one(path, int(answer.get("pid") or 0))

    async def stop(self) -> None:
        """Clean shutdown: every zygote of this daemon exits (running shims are not touched)."""
        paths = {z.path: z.pid for z in self.zygotes.values()}
        for path in await trio.to_thread.run_sync(self._listed):
            paths.setdefault(path, 0)
        async with trio.open_nursery() as nursery:
            for path, pid in paths.items():
                nursery.start_soon(_stop_one, path, pid)
        for z in self.zygotes.values():
            z.pid = 0

    def _listed(self) -> list[str]:
        try:
            names = os.listdir(self.socket_dir)
        except FileNotFoundError:
            return []
        return [os.path.join(self.socket_dir, n) for n in names if n.startswith(SOCKET_PREFIX)]


class ZygoteKeeper(Actor):
    """Ties the zygotes to the daemon's life: old ones swept at start, all stopped at a clean stop."""

    def __init__(self, zygotes: Zygotes) -> None:
        self.zygotes = zygotes

    async def on_start(self) -> None:
        self.nursery.start_soon(self.zygotes.sweep)

    async def on_stop(self) -> None:
        with trio.move_on_after(STOP_TIMEOUT * 2):
            await self.zygotes.stop()

    def statistics(self) -> dict:
        return self.zygotes.statistics()


# -- the wire: one JSON line each way -----------------------------------------------------------


async def _request(path: str, message: dict, timeout: float) -> dict:
    if timeout <= 0:
        raise ZygoteUnusable("no time left to ask it")
    data = b""
    try:
        with trio.fail_after(timeout):
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with sock:
                await sock.connect(path)
                out = (json.dumps(message) + "\n").encode()
                while out:
                    out = out[await sock.send(out):]
                while b"\n" not in data:
                    chunk = await sock.recv(REPLY_MAX)
                    if not chunk:
                        raise ZygoteUnusable("it closed the connection without an answer")
                    data += chunk
                    if len(data) > REPLY_MAX:
                        raise ZygoteUnusable(f"its answer is longer than {REPLY_MAX} bytes")
    except trio.TooSlowError:
        raise ZygoteUnusable(f"no answer within {timeout:.3g}s") from None
    except OSError as exc:
        raise ZygoteUnusable(f"{path}: {exc.strerror or exc}") from None
    try:
        answer = json.loads(data.partition(b"\n")[0])
    except ValueError:
        raise ZygoteUnusable(f"its answer is not JSON: {data[:200]!r}") from None
    if not isinstance(answer, dict):
        raise ZygoteUnusable(f"its answer is not a JSON object: {data[:200]!r}")
    return answer


async def _ping(path: str) -> dict | None:
    try:
        return await _request(path, {"op": "ping"}, PING_TIMEOUT)
    except ZygoteUnusable:
        return None


async def _stop_one(path: str, pid: int) -> None:
    """Ask it to exit; SIGTERM it (by its pid, if it is still a zygote) if it does not answer."""
    try:
        await _request(path, {"op": "stop"}, STOP_TIMEOUT)
    except ZygoteUnusable:
        if pid:
            await trio.to_thread.run_sync(_terminate, pid)
        return
    with trio.move_on_after(STOP_TIMEOUT):  # gone once it has removed its socket
        while await trio.to_thread.run_sync(os.path.exists, path):
            await trio.sleep(0.01)


def _terminate(pid: int) -> None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
        if b"dockyard-shim" not in cmdline or b"zygote" not in cmdline:
            return
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _make_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:32]
