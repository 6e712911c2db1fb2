"""Actors: state owned by one task, reached only through a bounded mailbox.

An actor handles one message at a time (its *turn*).  Callers ``ask`` (request
and reply, always with a deadline) or ``tell`` (fire and forget, still bounded:
a full mailbox pushes back on the sender instead of growing).

A handler that raises a typed ``DockyardError`` answers its caller with that
error and the actor goes on.  Any other exception is a crash: the caller whose
message was being handled gets ``Unavailable`` at once, and the supervisor
decides what happens next.  Messages still queued wait for the restarted actor;
if the actor is stopped for good they are answered ``Unavailable``.

Slow or foreign work (runc, fsync of a tree, a peer RPC) must not be done in the
turn: start it in ``self.nursery`` and send the result back to yourself.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, ClassVar, Iterator

import attrs
import trio

from wire import errdefs


def collapse(exc: BaseException) -> BaseException:
    """The single real error inside nested one-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@contextlib.contextmanager
def single_errors() -> Iterator[None]:
    """Let a single error leave a nursery as itself, not wrapped in a group (callers act on its kind)."""
    try:
        yield
    except BaseExceptionGroup as group:
        real = collapse(group)
        if real is group:
            raise
        raise real from None


def handles(*message_types: type) -> Callable:
    """Mark a method as the handler of the given message types."""

    def mark(fn: Callable) -> Callable:
        fn.__handles__ = message_types
        return fn

    return mark


@attrs.define(eq=False)
class _Reply:
    done: trio.Event = attrs.field(factory=trio.Event)
    value: Any = None
    error: BaseException | None = None

    def resolve(self, value: Any) -> None:
        if not self.done.is_set():
            self.value = value
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@attrs.define(eq=False)
class Envelope:
    message: Any
    reply: _Reply | None = None

    def fail(self, error: BaseException) -> None:
        if self.reply is not None:
            self.reply.fail(error)


@attrs.define(eq=False)
class Mailbox:
    """The bounded queue behind an ActorRef; it outlives restarts of its actor."""

    name: str
    capacity: int
    send: trio.MemorySendChannel = attrs.field(init=False)
    receive: trio.MemoryReceiveChannel = attrs.field(init=False)
    closed: bool = False

    def __attrs_post_init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel(self.capacity)

    def close(self, reason: str) -> None:
        """Refuse new messages and answer every queued one with Unavailable."""
        if self.closed:
            return
        self.closed = True
        self.send.close()
        while True:
            try:
                envelope = self.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            envelope.fail(errdefs.Unavailable(f"actor {self.name} is unavailable: {reason}"))
        self.receive.close()


@attrs.define(eq=False)
class ActorRef:
    """A stable address of an actor; survives its restarts."""

    mailbox: Mailbox
    asks: int = 0
    tells: int = 0

    @property
    def name(self) -> str:
        return self.mailbox.name

    async def ask(self, message: Any, *, timeout: float) -> Any:
        """Send ``message`` and wait for the reply, at most ``timeout`` seconds."""
        reply = _Reply()
        self.asks += 1
        with trio.move_on_after(timeout) as scope:
            await self._send(Envelope(message, reply))
            await reply.done.wait()
        if scope.cancelled_caught:
            raise errdefs.DeadlineExceeded(
                f"actor {self.name}: no reply to {type(message).__name__} within {timeout:g}s"
            )
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def tell(self, message: Any, *, timeout: float) -> None:
        """Queue ``message`` without waiting for it to be handled."""
        self.tells += 1
        with trio.move_on_after(timeout) as scope:
            await self._send(Envelope(message))
        if scope.cancelled_caught:
            raise errdefs.ResourceExhausted(f"actor {self.name}: mailbox full for {timeout:g}s")

    def tell_nowait(self, message: Any) -> None:
        self.tells += 1
        try:
            self.mailbox.send.send_nowait(Envelope(message))
        except trio.WouldBlock:
            raise errdefs.ResourceExhausted(f"actor {self.name}: mailbox full") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise errdefs.Unavailable(f"actor {self.name} is unavailable") from None

    async def _send(self, envelope: Envelope) -> None:
        try:
            await self.mailbox.send.send(envelope)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise errdefs.Unavailable(f"actor {self.name} is unavailable") from None

    def statistics(self) -> dict:
        stats = self.mailbox.send.statistics()
        return {
            "name": self.name,
            "queued": stats.current_buffer_used,
            "capacity": self.mailbox.capacity,
            "asks": self.asks,
            "tells": self.tells,
            "closed": self.mailbox.closed,
        }


class Actor:
    """Base of every actor.  Subclasses mark handlers with ``@handles(MessageType)``."""

    _dispatch: ClassVar[dict[type, str]] = {}

    #: set while running: child tasks whose failure crashes the actor
    nursery: trio.Nursery
    #: this actor's own address (so it can send itself results of background work)
    ref: ActorRef
    #: seconds ``on_stop`` may take before it is cut off
    stop_timeout: float = 5.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type, str] = {}
        for base in reversed(cls.__mro__):
            for attr, fn in vars(base).items():
                for message_type in getattr(fn, "__handles__", ()):
                    table[message_type] = attr
        cls._dispatch = table

    async def on_start(self) -> None:
        """Called before the first message; the actor is 'started' when it returns."""

    async def on_stop(self) -> None:
        """Called on the way out (shielded, bounded by ``stop_timeout``)."""

    async def receive(self, message: Any) -> Any:
        name = self._dispatch.get(type(message))
        if name is None:
            raise errdefs.NotImplemented_(
                f"actor {self.ref.name}: no handler for {type(message).__name__}"
            )
        return await getattr(self, name)(message)

    def statistics(self) -> dict:
        return {}


async def run_actor(
    actor: Actor, mailbox: Mailbox, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Run ``actor`` on ``mailbox`` until cancelled or crashed."""
    try:
        with single_errors():
            await _actor_loop(actor, mailbox, task_status)
    finally:
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + actor.stop_timeout if math.isfinite(actor.stop_timeout) else math.inf
            await actor.on_stop()


async def _actor_loop(actor: Actor, mailbox: Mailbox, task_status) -> None:
    current: Envelope | None = None
    try:
        async with trio.open_nursery() as nursery:
            actor.nursery = nursery
            await actor.on_start()
            task_status.started()
            async for envelope in mailbox.receive:
                current = envelope
                try:
                    result = await actor.receive(envelope.message)
                except errdefs.DockyardError as exc:
                    envelope.fail(exc)
                else:
                    if envelope.reply is not None:
                        envelope.reply.resolve(result)
                current = None
            nursery.cancel_scope.cancel()
    except BaseException as exc:
        if current is not None:
            reason = "stopped" if isinstance(exc, trio.Cancelled) else f"crashed: {exc!r}"
            current.fail(errdefs.Unavailable(
                f"actor {mailbox.name} {reason} while handling {type(current.message).__name__}"
            ))
        raise
