"""A live shim: its connection (owned by a ShimProxy actor) and the event pump.

The proxy actor connects to the shim's socket, says ``Task.Connect``, then
pumps ``Task.Events{after: acked}``: each event is published to the exchange
with the shim's own timestamp, the sequence is persisted at once (no await in
between), and only then is ``Task.Ack`` sent, so an event is published once even across daemon crashes
(the shim keeps what is not acknowledged).  Callers make shim calls directly
on the multiplexed connection (``Shim.call``) so a long ``Task.Wait`` never
occupies the proxy's turn.

When the connection drops the proxy reconnects; a refused or missing socket
means the shim is gone, and the task manager is told (``on_gone``).  A shim
that accepts but does not answer is *wedged*: it is retried with backoff and
its tasks show status ``unknown`` meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Awaitable, Callable

import attrs
import trio

from actors.core import Actor
from actors.core.actor import single_errors
from actors.rpc.client import open_client
from wire import errdefs

from .shimcmd import socket_path

log = logging.getLogger("dockyard.runtime.shim")

RETRY_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


@attrs.define(eq=False)
class Shim:
    """What the task manager and callers hold of one shim process."""

    address: str
    namespace: str
    binary: str
    state_dir: str  # <runtime state>/.shims
    tasks: set[str] = attrs.Factory(set)  # container ids served
    client: Any = None
    shim_pid: int = 0
    acked: int = 0
    connected: trio.Event = attrs.Factory(trio.Event)
    gone: str = ""  # why the shim is considered dead ("" while alive)
    closing: bool = False
    proxy_name: str = ""
    exits: dict[str, dict] = attrs.Factory(dict)  # container id → its init's /tasks/exit event
    deleted: set[str] = attrs.Factory(set)  # container ids whose /tasks/delete was published
    published: int = 0
    _waiters: dict[tuple[str, str], list[trio.Event]] = attrs.Factory(dict)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.address.encode()).hexdigest()[:32]

    @property
    def acked_path(self) -> str:
        return os.path.join(self.state_dir, f"{self.key}.json")

    # -- calls ----------------------------------------------------------------------

    async def call(self, method: str, params: dict, *, timeout: float) -> Any:
        """One shim RPC; Unavailable when the shim is gone or unreachable within ``timeout``."""
        with trio.move_on_after(timeout):
            await self.connected.wait()
        if self.gone:
            raise errdefs.Unavailable(f"shim {self.address}: {self.gone}")
        client = self.client
        if client is None:
            raise errdefs.Unavailable(f"shim {self.address}: not connected within {timeout:g}s")
        return await client.call(method, params, timeout=timeout, namespace=self.namespace)

    # -- event waiters ----------------------------------------------------------------

    def waiter(self, cid: str, topic: str) -> trio.Event:
        """An event set when ``topic`` for container ``cid`` has been published (or the shim is gone)."""
        event = trio.Event()
        self._waiters.setdefault((cid, topic), []).append(event)
        return event

    def _notify(self, cid: str, topic: str) -> None:
        for event in self._waiters.pop((cid, topic), []):
            event.set()

    def _wake_all(self) -> None:
        for events in self._waiters.values():
            for event in events:
                event.set()
        self._waiters.clear()

    # -- ack bookkeeping (small file, replaced atomically; no fsync: survives kill -9) ---

    def load_acked(self, shim_pid: int) -> int:
        try:
            with open(self.acked_path) as fh:
                saved = json.load(fh)
        except (FileNotFoundError, ValueError):
            return 0
        if saved.get("shim_pid") != shim_pid or saved.get("address") != self.address:
            return 0  # another shim process at this address: its sequence starts afresh
        return int(saved.get("acked", 0))

    def save_acked(self) -> None:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        tmp = self.acked_path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"address": self.address, "shim_pid": self.shim_pid, "acked": self.acked}, fh)
        os.replace(tmp, self.acked_path)

    def forget_acked(self) -> None:
        try:
            os.unlink(self.acked_path)
        except FileNotFoundError:
            pass


Publish = Callable[[str, str, dict, int], None]


class ShimProxy(Actor):
    """Owns the connection to one shim and pumps its events."""

    def __init__(self, shim: Shim, *, publish: Publish, on_gone: Callable[[Shim], Awaitable[None]],
                 call_timeout: float, connect_timeout: float) -> None:
        self.shim = shim
        self.publish = publish
        self.on_gone = on_gone
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self.reconnects = 0

    async def on_start(self) -> None:
        self.nursery.start_soon(self._run)

    async def on_stop(self) -> None:
        self.shim.client = None

    def statistics(self) -> dict:
        s = self.shim
        return {"address": s.address, "shim_pid": s.shim_pid, "tasks": sorted(s.tasks), "acked": s.acked,
                "published": s.published, "reconnects": self.reconnects, "gone": s.gone}

    async def _run(self) -> None:
        path = socket_path(self.shim.address)
        attempt = 0
        while True:
            reason = ""
            dead = False
            try:
                async with open_client(path, connect_timeout=self.connect_timeout) as client:
                    any_task = next(iter(self.shim.tasks), "")
                    info = await client.call("Task.Connect", {"id": any_task}, timeout=self.connect_timeout)
                    self._attach(client, int(info.get("shim_pid", 0)))
                    attempt = 0
                    await self._pump(client)
                    reason = "connection closed by the shim"
            except errdefs.DeadlineExceeded as exc:
                reason = f"wedged: {exc.message}"
            except errdefs.Unavailable as exc:
                reason = exc.message
                dead = not os.path.exists(path) or "refused" in reason or "No such file" in reason
            except (OSError, trio.TooSlowError) as exc:
                reason = f"{exc!r}"
            except errdefs.DockyardError as exc:
                reason = exc.message
            self._detach()
            if self.shim.closing:
                return
            if not dead and self.shim.shim_pid and not _alive(self.shim.shim_pid):
                dead = True
            if dead:
                self.shim.gone = reason or "shim exited"
                self.shim.connected.set()  # wake callers: they see `gone`
                self.shim._wake_all()
                log.warning("shim %s is gone: %s", self.shim.address, self.shim.gone)
                await self.on_gone(self.shim)
                return
            log.info("shim %s: %s; reconnecting", self.shim.address, reason)
            self.reconnects += 1
            await trio.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
            attempt += 1

    def _attach(self, client, shim_pid: int) -> None:
        shim = self.shim
        if shim_pid != shim.shim_pid or not shim.acked:
            shim.acked = shim.load_acked(shim_pid)
        shim.shim_pid = shim_pid
        shim.client = client
        shim.connected.set()

    def _detach(self) -> None:
        self.shim.client = None
        if self.shim.connected.is_set() and not self.shim.gone:
            self.shim.connected = trio.Event()

    async def _pump(self, client) -> None:
        shim = self.shim
        dirty = trio.Event()
        ack_failed: list[BaseException] = []
        sent = shim.acked  # taken now: events may be published before the acker first runs

        async def acker() -> None:
            nonlocal dirty, sent
            while True:
                await dirty.wait()
                dirty = trio.Event()
                seq = shim.acked
                if seq <= sent:
                    continue
                try:
                    await client.call("Task.Ack", {"seq": seq}, timeout=self.call_timeout)
                except (errdefs.DockyardError, OSError) as exc:
                    ack_failed.append(exc)  # reconnect: the shim keeps what is not acknowledged
                    nursery.cancel_scope.cancel()
                    return
                sent = seq

        # One failing member (the stream) must surface as itself, not as a group: `_run`
        # tells a closed connection from a dead shim by the error's kind.
        with single_errors():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(acker)
                async for item in client.stream("Task.Events", {"after": shim.acked}):
                    seq = int(item["seq"])
                    if seq <= shim.acked:
                        continue  # already published before a reconnect
                    event = item.get("event") or {}
                    self.publish(item.get("namespace") or shim.namespace, item["topic"], event,
                                 int(item.get("timestamp") or 0))
                    shim.acked = seq
                    shim.save_acked()  # no await between publish and save: exactly once across kill -9
                    shim.published += 1
                    cid = str(event.get("container_id", ""))
                    if item["topic"] == "/tasks/exit" and event.get("id") == cid:
                        shim.exits[cid] = event
                    elif item["topic"] == "/tasks/delete":
                        shim.deleted.add(cid)
                    shim._notify(cid, item["topic"])
                    dirty.set()
                nursery.cancel_scope.cancel()
        if ack_failed:
            raise ack_failed[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
