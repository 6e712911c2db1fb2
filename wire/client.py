"""A synchronous msgpack-RPC client for the CLI and scripts (no Trio on this path).

    with Client("/run/dockyard/dockyard.sock", namespace="default") as c:
        c.call("Namespaces.List")
        for envelope in c.stream("Events.Subscribe", {"filters": []}):
            ...

Errors come back as the typed errors of ``wire.errdefs``.  ``fds=[...]`` on a
call passes open descriptors with the request (SCM_RIGHTS); the daemon gets its
own copies and the caller still closes its own.
"""

from __future__ import annotations

import itertools
import socket
import time

from . import codec, errdefs

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs start-up time on the CLI path
    from typing import Any, Iterable, Iterator


class Client:
    def __init__(
        self,
        address: str,
        *,
        namespace: str | None = None,
        lease: str | None = None,
        timeout: float | None = None,
        max_frame_size: int = codec.DEFAULT_MAX_FRAME,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.lease = lease
        self.timeout = timeout
        self._codec = codec.Connection(max_frame_size=max_frame_size)
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None

    # -- connection ----------------------------------------------------------------

    def connect(self) -> "Client":
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.address)
            except FileNotFoundError:
                sock.close()
                raise errdefs.Unavailable(f"daemon at {self.address}: no such socket (is dockyardd running?)") from None
            except ConnectionRefusedError:
                sock.close()
                raise errdefs.Unavailable(f"daemon at {self.address}: connection refused") from None
            except PermissionError:
                sock.close()
                raise errdefs.PermissionDenied(f"daemon at {self.address}: permission denied") from None
            self._sock = sock
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ----------------------------------------------------------------------

    def call(self, method: str, params: dict | None = None, **meta: Any) -> Any:
        """One request, one response."""
        rid = self._send_request(method, params, meta)
        for event in self._events_for(rid):
            if isinstance(event, codec.StreamItem):
                continue  # a unary call never streams; ignore stray items
            return event
        raise AssertionError("unreachable")

    def stream(self, method: str, params: dict | None = None, **meta: Any) -> "CallStream":
        """A server-streaming call, sent at once: iterate to get its items.

        Streams have no deadline unless ``timeout=`` is given.  Iteration raises
        the final error, if any; once it ends, ``result`` holds the final
        response.  Closing the stream early (or Ctrl-C) cancels the call.
        """
        meta.setdefault("timeout", None)
        rid = self._send_request(method, params, meta, streaming=True)
        return CallStream(self, rid)

    def upload(self, method: str, params: dict | None, items: Iterable[Any], **meta: Any) -> Any:
        """A client-streaming call: sends ``items`` then waits for the response."""
        rid = self._send_request(method, params, meta, streaming=True)
        sock = self._require()
        for item in items:
            sock.sendall(codec.encode(codec.StreamItem(id=rid, item=item)))
        sock.sendall(codec.encode(codec.StreamEnd(id=rid)))
        for event in self._events_for(rid):
            if not isinstance(event, codec.StreamItem):
                return event
        raise AssertionError("unreachable")

    # -- machinery ----------------------------------------------------------------

    def _require(self) -> socket.socket:
        return self.connect()._sock  # type: ignore[return-value]

    def _send_request(self, method: str, params: dict | None, meta: dict, streaming: bool = False) -> int:
        sock = self._require()
        rid = next(self._ids) % (2**32)
        timeout = meta.pop("timeout", self.timeout)
        fds = list(meta.pop("fds", None) or ())
        m = codec.Metadata(
            namespace=meta.pop("namespace", self.namespace),
            lease=meta.pop("lease", self.lease),
            deadline=time.time_ns() + int(timeout * 1e9) if timeout else None,
            fds=len(fds) or None,
        )
        if meta:
            raise TypeError(f"unknown call options {sorted(meta)}")
        sock.settimeout(None if streaming or not timeout else timeout + 1.0)
        send_with_fds(sock, codec.encode(codec.Request(id=rid, method=method, params=params or {}, meta=m)), fds)
        return rid

    def _cancel(self, rid: int) -> None:
        if self._sock is None:
            return  # the connection is gone, and the call with it
        try:
            self._sock.sendall(codec.encode(codec.Cancel(id=rid)))
        except OSError:
            pass
        self.close()  # the rest of that stream is of no use to anyone

    def _events_for(self, rid: int) -> Iterator[Any]:
        """Yield StreamItems of ``rid``, then the response result (or raise its error)."""
        sock = self._require()
        while True:
            for event in self._codec.events():
                if isinstance(event, codec.Response) and event.id == rid:
                    if event.error is not None:
                        raise event.error
                    yield event.result
                    return
                if isinstance(event, codec.StreamItem) and event.id == rid:
                    yield event
                elif isinstance(event, codec.Notification) and event.method == "$error":
                    self.close()
                    raise errdefs.from_wire(event.params)
            try:
                data = sock.recv(1 << 20)
            except socket.timeout:
                self.close()
                raise errdefs.DeadlineExceeded(f"no response from {self.address} in time") from None
            if not data:
                self.close()
                raise errdefs.Unavailable(f"daemon at {self.address} closed the connection")
            self._codec.receive_data(data)


def send_with_fds(sock: socket.socket, frame: bytes, fds: list[int]) -> None:
    """Send ``frame``; ``fds`` ride as SCM_RIGHTS on its first bytes (as the server expects)."""
    if not fds:
        sock.sendall(frame)
        return
    sent = socket.send_fds(sock, [frame], fds)
    if sent < len(frame):
        sock.sendall(frame[sent:])


class CallStream:
    """The items of one server-streaming call, then its ``result``."""

    def __init__(self, client: Client, rid: int) -> None:
        self._client = client
        self._rid = rid
        self._events = client._events_for(rid)
        self.done = False
        self.result: Any = None

    def __iter__(self) -> "CallStream":
        return self

    def __next__(self) -> Any:
        if self.done:
            raise StopIteration
        try:
            event = next(self._events)
        except StopIteration:
            self.done = True
            raise
        except BaseException:
            self.done = True
            raise
        if isinstance(event, codec.StreamItem):
            return event.item
        self.done = True
        self.result = event
        raise StopIteration

    def close(self) -> None:
        """Give up on the call: the daemon is told, and the connection is dropped."""
        if not self.done:
            self.done = True
            self._client._cancel(self._rid)

    def __enter__(self) -> "CallStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self.done:
            try:
                self.close()
            except Exception:
                pass
