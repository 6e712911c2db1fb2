"""How a service exposes methods on the msgpack-RPC socket.

    class NamespacesService(Service):
        name = "Namespaces"

        @rpc(CreateNamespace)
        async def Create(self, ctx: CallContext, req: CreateNamespace) -> dict: ...

A method takes the call context and its request (an attrs message structured by
the one converter) and returns something the converter can unstructure.
``stream="server"`` methods send items with ``await ctx.send(item)`` before they
return; ``stream="client"`` methods read the caller's items with
``async for item in ctx.items()``.  Descriptors the caller passed with the
request (unix socket only) are ``ctx.fd(i)``: the handler reads them during the
call and never closes them (the server does, when the call ends).
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Literal

import attrs
import trio

from wire import errdefs, identifiers
from wire.codec import Metadata

StreamKind = Literal["none", "server", "client", "bidi"]


@attrs.frozen(kw_only=True)
class Method:
    name: str
    request: type
    handler: Callable[..., Awaitable[Any]]
    stream: StreamKind = "none"


def rpc(request: type, *, stream: StreamKind = "none"):
    def mark(fn):
        fn.__rpc__ = (request, stream)
        return fn

    return mark


class Service:
    """Base of RPC facades; ``name`` prefixes every method (``Namespaces.Create``)."""

    name: str = ""

    def rpc_methods(self) -> dict[str, Method]:
        methods = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            marked = getattr(fn, "__rpc__", None)
            if marked is None:
                continue
            request, stream = marked
            full = f"{self.name}.{attr}"
            methods[full] = Method(name=full, request=request, handler=getattr(self, attr), stream=stream)
        return methods


@attrs.define(eq=False)
class CallContext:
    """One call as the handler sees it: metadata, deadline and its streams."""

    method: str
    meta: Metadata
    deadline: float  # trio clock
    send_item: Callable[[Any], Awaitable[None]] | None = None
    incoming: trio.MemoryReceiveChannel | None = None
    peer_uid: int | None = None
    fds: tuple[int, ...] = ()  # passed with the request; closed by the server after the call

    @property
    def namespace(self) -> str:
        """The request's namespace; a namespaced method without one is refused as containerd does."""
        ns = self.meta.namespace
        if not ns:
            raise errdefs.FailedPrecondition("namespace is required")
        identifiers.validate_namespace(ns)
        return ns

    @property
    def lease(self) -> str | None:
        return self.meta.lease or None

    def remaining(self) -> float:
        return max(0.0, self.deadline - trio.current_time())

    async def send(self, item: Any) -> None:
        if self.send_item is None:
            raise errdefs.FailedPrecondition(f"{self.method} is not a streaming method")
        await self.send_item(item)

    def fd(self, index: int, what: str) -> int:
        """The ``index``-th descriptor passed with the request; ``what`` names it in errors."""
        if not isinstance(index, int) or not 0 <= index < len(self.fds):
            raise errdefs.InvalidArgument(
                f"{what}: descriptor {index} was not passed with the request ({len(self.fds)} were)")
        return self.fds[index]

    async def items(self):
        if self.incoming is None:
            raise errdefs.FailedPrecondition(f"{self.method} takes no streamed input")
        async for item in self.incoming:
            yield item


def deadline_from(meta: Metadata, default_timeout: float) -> float:
    """Turn the absolute wall-clock deadline of the metadata into a trio deadline."""
    now = trio.current_time()
    if meta.deadline is None:
        return now + default_timeout
    remaining = (meta.deadline - time.time_ns()) / 1e9
    return now + max(0.0, remaining)
