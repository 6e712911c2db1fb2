"""Spare shims: started ahead, per (namespace, shim binary), so a create skips the shim's start.

Starting a shim costs a Python start-up (~0.2 s).  The pool keeps ``size``
spares per (namespace, binary) that has run a task: each is a shim started with
``start`` in a directory of its own (``<bundle root>/.pool/<ns>-<token>``) for a
group named ``pool-<token>``.  A create takes one (checking its socket still
answers), writes ``"group": "pool-<token>"`` into its bundle's options.json (so
the group rule still names that shim) and uses its address as ``start`` would
have printed it; the pool then starts a replacement in the background.  A taken
shim serves one container and exits with it (Shutdown when it serves none).

Spares are told to exit when the daemon stops; after a kill -9 the next start
finds their directories and retires them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
from typing import Callable

import attrs
import trio

from actors.core import Actor, handles
from actors.rpc.client import open_client
from wire import errdefs

from . import shimcmd

log = logging.getLogger("dockyard.runtime.pool")

POOL_DIR = ".pool"
RETIRE_TIMEOUT = 2.0


@attrs.frozen(kw_only=True)
class Spare:
    address: str
    group: str
    directory: str
    boot: dict


@attrs.frozen(kw_only=True)
class Take:
    namespace: str
    binary: str


class ShimPool(Actor):
    def __init__(self, *, bundle_root: str, daemon_address: str, size: int, start_timeout: float,
                 options_for: Callable[[str], dict]) -> None:
        self.root = os.path.join(bundle_root, POOL_DIR)
        self.daemon_address = daemon_address
        self.size = size
        self.start_timeout = start_timeout
        self.options_for = options_for
        self.spares: dict[tuple[str, str], list[Spare]] = {}
        self.filling: set[tuple[str, str]] = set()
        self.taken = 0
        self.started = 0

    async def on_start(self) -> None:
        await retire_all(self.root)

    async def on_stop(self) -> None:
        with trio.move_on_after(RETIRE_TIMEOUT * 2):
            async with trio.open_nursery() as nursery:
                for spares in self.spares.values():
                    for spare in spares:
                        nursery.start_soon(retire, spare.address, spare.directory)
            await retire_all(self.root)  # and any whose start had not reported yet
        self.spares.clear()

    def statistics(self) -> dict:
        return {"spares": sum(len(s) for s in self.spares.values()), "taken": self.taken, "started": self.started}

    @handles(Take)
    async def take(self, msg: Take) -> Spare | None:
        if self.size <= 0:
            return None
        key = (msg.namespace, msg.binary)
        spares = self.spares.setdefault(key, [])
        found = None
        while spares:
            spare = spares.pop(0)
            if _answers(shimcmd.socket_path(spare.address)):
                found = spare
                break
            shutil.rmtree(spare.directory, ignore_errors=True)
        if found is not None:
            self.taken += 1
        if key not in self.filling:
            self.filling.add(key)
            self.nursery.start_soon(self._fill, key)
        return found

    async def _fill(self, key: tuple[str, str]) -> None:
        try:
            while len(self.spares.get(key, [])) < self.size:
                # shielded: a start cut short would leave a shim nobody knows the address of
                with trio.CancelScope(shield=True):
                    spare = await self._start_one(*key)
                self.spares.setdefault(key, []).append(spare)  # no checkpoint in between: on_stop sees it
                self.started += 1
        except (errdefs.DockyardError, OSError) as exc:
            log.warning("shim pool %s: could not start a spare: %s", key[0], getattr(exc, "message", exc))
        finally:
            self.filling.discard(key)

    async def _start_one(self, namespace: str, binary: str) -> Spare:
        token = secrets.token_hex(6)
        group = f"pool-{token}"
        directory = os.path.join(self.root, f"{namespace}-{token}")
        options = {**self.options_for(namespace), "group": group}
        await trio.to_thread.run_sync(_prepare_dir, self.root, directory, options)
        try:
            boot = await shimcmd.start(binary, directory, namespace, group, self.daemon_address,
                                       timeout=self.start_timeout)
        except BaseException:
            await trio.to_thread.run_sync(_stop_by_pidfile, directory)
            raise
        await trio.to_thread.run_sync(_write, os.path.join(directory, "bootstrap.json"), json.dumps(boot))
        return Spare(address=boot["address"], group=group, directory=directory, boot=boot)


def _prepare_dir(root: str, directory: str, options: dict) -> None:
    os.makedirs(root, mode=0o711, exist_ok=True)
    os.mkdir(directory, 0o700)
    _write(os.path.join(directory, "options.json"), json.dumps(options))


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _answers(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


async def retire(address: str, directory: str) -> None:
    """Tell an idle spare to exit, then drop its directory."""
    with trio.move_on_after(RETIRE_TIMEOUT):
        try:
            async with open_client(shimcmd.socket_path(address), connect_timeout=RETIRE_TIMEOUT) as client:
                await client.call("Task.Shutdown", {"id": "", "now": False}, timeout=RETIRE_TIMEOUT)
        except (errdefs.DockyardError, OSError):
            pass
    if directory:
        await trio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))


async def retire_all(root: str) -> None:
    """Retire the spares a previous daemon left (it was killed before it could)."""
    try:
        names = await trio.to_thread.run_sync(os.listdir, root)
    except FileNotFoundError:
        return
    async with trio.open_nursery() as nursery:
        for name in names:
            directory = os.path.join(root, name)
            try:
                with open(os.path.join(directory, "bootstrap.json")) as fh:
                    address = json.load(fh)["address"]
            except (OSError, ValueError, KeyError):  # killed mid-start: only its pid file tells
                await trio.to_thread.run_sync(_stop_by_pidfile, directory)
                continue
            nursery.start_soon(retire, address, directory)


def _stop_by_pidfile(directory: str) -> None:
    """SIGTERM the spare whose ``shim.pid`` is in ``directory`` (if it is one), then drop the directory."""
    try:
        with open(os.path.join(directory, "shim.pid")) as fh:
            pid = int(fh.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read()
        if b"dockyard-shim" in cmdline and b"pool-" in cmdline:
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass
    shutil.rmtree(directory, ignore_errors=True)
