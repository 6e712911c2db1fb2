"""The events plugin: the exchange actor and its RPC facade ``Events.*``."""

from __future__ import annotations

import os
from typing import Callable

import attrs

from actors.core import ChildSpec
from actors.plugin import EVENT, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from actors.timeouts import ACTOR_ASK
from wire import errdefs, identifiers

from .exchange import Exchange, ExchangeConfig, Forward


@attrs.frozen(kw_only=True)
class PublishRequest:
    topic: str
    event: dict = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class ForwardRequest:
    namespace: str
    topic: str
    timestamp: int
    event: dict = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class SubscribeRequest:
    filters: list[str] = attrs.Factory(list)
    since: int | None = None


@attrs.frozen(kw_only=True)
class StatsRequest:
    pass


class EventsService(Service):
    name = "Events"

    def __init__(self, current: Callable[[], Exchange], ask_timeout: float) -> None:
        self._current = current  # the live Exchange, also after a supervisor restart
        self.ask_timeout = ask_timeout

    @property
    def exchange(self) -> Exchange:
        return self._current()

    @property
    def ref(self):
        return self.exchange.ref

    def publish(self, namespace: str, topic: str, event) -> None:
        """What other plugins call after their write commits."""
        self.exchange.publish(namespace, topic, event)

    @rpc(PublishRequest)
    async def Publish(self, ctx: CallContext, req: PublishRequest) -> dict:
        identifiers.validate_topic(req.topic)
        envelope = self.exchange.publish(ctx.namespace, req.topic, req.event)
        return {"seq": envelope.seq}

    @rpc(ForwardRequest)
    async def Forward(self, ctx: CallContext, req: ForwardRequest) -> dict:
        seq = await self.ref.ask(Forward(namespace=req.namespace, topic=req.topic,
                                         timestamp=req.timestamp, event=req.event), timeout=self.ask_timeout)
        return {"seq": seq}

    @rpc(SubscribeRequest, stream="server")
    async def Subscribe(self, ctx: CallContext, req: SubscribeRequest) -> dict:
        sub = self.exchange.subscribe(req.filters, since=req.since)
        try:
            async for envelope in sub:
                await ctx.send(envelope)
        finally:
            self.exchange.unsubscribe(sub)
        return {"delivered": sub.delivered}

    @rpc(StatsRequest)
    async def Stats(self, ctx: CallContext, req: StatsRequest) -> dict:
        return self.exchange.statistics()


@plugin(EVENT, "exchange", config=ExchangeConfig)
async def init_exchange(ic: InitContext) -> EventsService:
    if ic.config.backlog < 1 or ic.config.subscriber_buffer < 1:
        raise errdefs.InvalidArgument("backlog and subscriber_buffer must be at least 1")
    sequence_file = os.path.join(ic.ensure_root(), "sequence")
    live: list[Exchange] = []

    def start() -> Exchange:
        live[:] = [Exchange(ic.config, sequence_file)]
        return live[0]

    await ic.spawn(ChildSpec(name="events", start=start, mailbox_size=1024))
    return EventsService(lambda: live[0], ic.timeouts(ACTOR_ASK))
