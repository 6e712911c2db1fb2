"""The shim's ordered event outbox: per-shim sequence numbers, kept until acknowledged.

Every event gets the next sequence number and stays in memory until the daemon
acknowledges it (``ack(seq)`` = "published everything up to seq").  Each one is
also appended to ``<bundle>/events.outbox`` (msgpack records) so that ``delete``
mode, run after the shim died, can still tell what happened (the init's exit).
Subscribers (``Task.Events`` streams) get the backlog after their cursor, then
every new event as it is emitted.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import msgpack

OUTBOX = "events.outbox"

TOPIC_CREATE = "/tasks/create"
TOPIC_START = "/tasks/start"
TOPIC_EXIT = "/tasks/exit"
TOPIC_DELETE = "/tasks/delete"
TOPIC_EXEC_ADDED = "/tasks/exec-added"
TOPIC_EXEC_STARTED = "/tasks/exec-started"
TOPIC_PAUSED = "/tasks/paused"
TOPIC_RESUMED = "/tasks/resumed"
TOPIC_OOM = "/tasks/oom"


class EventLog:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.last_seq = 0
        self.acked = 0
        self._pending: list[tuple[dict, str]] = []  # (envelope, bundle)
        self._subscribers: dict[object, Callable[[dict], None]] = {}

    def emit(self, topic: str, event: dict, bundle: str) -> dict:
        self.last_seq += 1
        envelope = {"seq": self.last_seq, "namespace": self.namespace, "topic": topic,
                    "timestamp": time.time_ns(), "event": event}
        self._pending.append((envelope, bundle))
        _append(bundle, envelope)
        for send in list(self._subscribers.values()):
            send(envelope)
        return envelope

    def since(self, after: int) -> list[dict]:
        return [env for env, _ in self._pending if env["seq"] > after]

    def subscribe(self, key: object, send: Callable[[dict], None], after: int) -> None:
        """Send the backlog after ``after``, then every new event, until ``unsubscribe(key)``."""
        for envelope in self.since(after):
            send(envelope)
        self._subscribers[key] = send

    def unsubscribe(self, key: object) -> None:
        self._subscribers.pop(key, None)

    def ack(self, seq: int) -> None:
        if seq <= self.acked:
            return
        self.acked = min(seq, self.last_seq)
        dropped = {bundle for env, bundle in self._pending if env["seq"] <= seq}
        self._pending = [(env, b) for env, b in self._pending if env["seq"] > seq]
        for bundle in dropped:
            _rewrite(bundle, [env for env, b in self._pending if b == bundle])

    def pending_count(self) -> int:
        return len(self._pending)


def _append(bundle: str, envelope: dict) -> None:
    try:
        fd = os.open(os.path.join(bundle, OUTBOX), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return  # the bundle is gone (the daemon deleted it): memory still has the event
    try:
        os.write(fd, msgpack.packb(envelope, use_bin_type=True))
    finally:
        os.close(fd)


def _rewrite(bundle: str, envelopes: list[dict]) -> None:
    path = os.path.join(bundle, OUTBOX)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as fh:
            for env in envelopes:
                fh.write(msgpack.packb(env, use_bin_type=True))
        os.replace(tmp, path)
    except OSError:
        pass


def read_outbox(bundle: str) -> list[dict]:
    """The unacknowledged events a (possibly dead) shim left in ``bundle``; a torn tail is ignored."""
    try:
        with open(os.path.join(bundle, OUTBOX), "rb") as fh:
            data = fh.read()
    except OSError:
        return []
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    out = []
    try:
        for item in unpacker:
            if isinstance(item, dict):
                out.append(item)
    except Exception:
        pass
    return out
