"""The event exchange: one sequence, a bounded backlog, bounded subscribers.

Publishing is synchronous and never waits: the envelope gets the next sequence
number, joins the backlog, and is offered to every matching subscriber with
``send_nowait``.  A subscriber whose buffer is full is closed with
"fell behind at N" (N = the first sequence it missed) and never slows the
publisher or anyone else.  A subscriber may start at ``since``: it first gets
the kept envelopes after ``since``, then live ones, with no gap or duplicate
(hand-over happens without a checkpoint in between).  Asking for envelopes
older than the backlog keeps is refused plainly (OutOfRange).

Sequence numbers survive restarts: blocks of numbers are reserved in a small
file, so a restarted daemon continues above anything it handed out before.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import time
from typing import Any

import attrs
import trio

from actors.core import Actor, handles
from wire import errdefs, filters, identifiers
from wire.converter import unstructure
from wire.events import Envelope

log = logging.getLogger("dockyard.events")

SEQUENCE_BLOCK = 10_000


@attrs.frozen(kw_only=True)
class ExchangeConfig:
    backlog: int = 10_000  # envelopes kept for resume (--since)
    subscriber_buffer: int = 4096  # envelopes a subscriber may lag before it is cut off


@attrs.frozen(kw_only=True)
class Forward:
    """An envelope from elsewhere (a shim): keeps its namespace and timestamp."""

    namespace: str
    topic: str
    timestamp: int
    event: dict


@attrs.frozen(kw_only=True)
class Stats:
    pass


class FellBehind(errdefs.ResourceExhausted):
    def __init__(self, seq: int) -> None:
        super().__init__(f"subscriber fell behind at {seq}: events from {seq} on were not delivered; "
                         f"resume with since={seq - 1}")
        self.seq = seq


@attrs.define(eq=False)
class Subscription:
    id: int
    filter: filters.Filter
    send: trio.MemorySendChannel
    receive: trio.MemoryReceiveChannel
    delivered: int = 0
    closed: errdefs.DockyardError | None = None

    async def __aiter__(self):
        async for envelope in self.receive:
            yield envelope
        if self.closed is not None:
            raise self.closed


class _EnvelopeView:
    """Filter adaptor over an envelope: ``namespace``, ``topic``, ``event.<field>``."""

    __slots__ = ("envelope",)

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope

    def field(self, path: tuple[str, ...]) -> str | None:
        head = path[0]
        if head == "namespace" and len(path) == 1:
            return self.envelope.namespace
        if head == "topic" and len(path) == 1:
            return self.envelope.topic
        if head == "event":
            return filters.MappingAdaptor(self.envelope.event).field(path[1:]) if len(path) > 1 else None
        return None


class Exchange(Actor):
    def __init__(self, config: ExchangeConfig, sequence_file: str) -> None:
        self.config = config
        self.sequence_file = sequence_file
        self.backlog: collections.deque[Envelope] = collections.deque(maxlen=max(1, config.backlog))
        self.subscribers: dict[int, Subscription] = {}
        self._ids = itertools.count(1)
        self._reserved = 0
        self.seq = self._load_sequence()
        self.published = 0
        self.dropped_subscribers = 0

    # -- sequence numbers ----------------------------------------------------------------

    def _load_sequence(self) -> int:
        try:
            with open(self.sequence_file) as fh:
                start = int(fh.read().strip() or 0)
        except FileNotFoundError:
            start = 0
        except ValueError:
            raise errdefs.DataLoss(f"event sequence file {self.sequence_file} is corrupt") from None
        self._reserve(start)
        return start

    def _reserve(self, start: int) -> None:
        self._reserved = start + SEQUENCE_BLOCK
        tmp = self.sequence_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(self._reserved))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.sequence_file)

    def _next_seq(self) -> int:
        self.seq += 1
        if self.seq >= self._reserved:
            self._reserve(self.seq)
        return self.seq

    # -- the synchronous entry points (never wait) --------------------------------

    def publish(self, namespace: str, topic: str, event: Any, *, timestamp: int | None = None) -> Envelope:
        envelope = Envelope(
            seq=self._next_seq(),
            timestamp=timestamp or time.time_ns(),
            namespace=namespace,
            topic=topic,
            event=event if isinstance(event, dict) else unstructure(event),
        )
        self.backlog.append(envelope)
        self.published += 1
        view = _EnvelopeView(envelope)
        for sub in list(self.subscribers.values()):
            if not sub.filter.match(view):
                continue
            try:
                sub.send.send_nowait(envelope)
                sub.delivered += 1
            except trio.WouldBlock:
                self._drop(sub, FellBehind(envelope.seq))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.subscribers.pop(sub.id, None)
        return envelope

    def subscribe(self, filter_texts: list[str], *, since: int | None = None) -> Subscription:
        flt = filters.parse_any(filter_texts)
        pending: list[Envelope] = []
        if since is not None:
            if since < 0:
                raise errdefs.InvalidArgument(f"since must be >= 0, got {since}")
            oldest = self.backlog[0].seq if self.backlog else self.seq + 1
            if since > self.seq:
                raise errdefs.OutOfRange(f"since={since} is ahead of the newest event {self.seq}")
            if since < oldest - 1:
                raise errdefs.OutOfRange(
                    f"events after {since} are no longer kept: the oldest kept event is {oldest}")
            pending = [e for e in self.backlog if e.seq > since and flt.match(_EnvelopeView(e))]
        size = max(self.config.subscriber_buffer, len(pending) + 1)
        send, receive = trio.open_memory_channel(size)
        sub = Subscription(id=next(self._ids), filter=flt, send=send, receive=receive)
        for envelope in pending:
            send.send_nowait(envelope)
        self.subscribers[sub.id] = sub
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.pop(sub.id, None)
        sub.send.close()

    def _drop(self, sub: Subscription, reason: errdefs.DockyardError) -> None:
        log.warning("closing subscriber %d: %s", sub.id, reason.message)
        self.dropped_subscribers += 1
        sub.closed = reason
        self.subscribers.pop(sub.id, None)
        sub.send.close()

    # -- messages ------------------------------------------------------------------

    @handles(Forward)
    async def forward(self, msg: Forward) -> int:
        identifiers.validate_namespace(msg.namespace)
        identifiers.validate_topic(msg.topic)
        if msg.timestamp <= 0:
            raise errdefs.InvalidArgument("forwarded event needs a timestamp")
        return self.publish(msg.namespace, msg.topic, msg.event, timestamp=msg.timestamp).seq

    @handles(Stats)
    async def stats(self, msg: Stats) -> dict:
        return self.statistics()

    def statistics(self) -> dict:
        return {
            "seq": self.seq,
            "published": self.published,
            "backlog": len(self.backlog),
            "oldest": self.backlog[0].seq if self.backlog else None,
            "subscribers": len(self.subscribers),
            "dropped_subscribers": self.dropped_subscribers,
        }
