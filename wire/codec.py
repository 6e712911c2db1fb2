"""Sans-IO MessagePack-RPC codec: bytes in, events out; events in, bytes out.

Frames are plain MessagePack-RPC so any msgpack-rpc client can script the daemon:

    request       [0, id, method, [params, meta]]     meta: {namespace, lease, deadline, fds}
    response      [1, id, error, result]              error: nil or [kind, message]
    notification  [2, method, params]

Streams ride on notifications tied to a request id:

    [2, "$item", [id, item]]    one streamed item (either direction)
    [2, "$end", [id]]           the client has no more items for request id
    [2, "$cancel", [id]]        the client gives up on request id

A server-streaming call sends its items and then ends with the response.

On a unix socket a request may carry open file descriptors (SCM_RIGHTS): ``fds``
in its metadata says how many, and they travel as ancillary data of the
``sendmsg`` that carries the request frame's bytes, so the server holds them by
the time the frame ends.  The codec only checks the count; the transports move
the descriptors.

The codec enforces a frame size limit before it allocates and treats any malformed
frame as fatal for the connection: after a ``ProtocolError`` the connection is
poisoned and every further call raises it again (as h11 does).
"""

from __future__ import annotations

from collections import namedtuple

import msgpack

from . import errdefs

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing costs start-up time on the CLI and shim path
    from typing import Any

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2
ITEM, END, CANCEL = "$item", "$end", "$cancel"
DEFAULT_MAX_FRAME = 16 * 1024 * 1024
MAX_CALL_FDS = 4  # descriptors one request may carry


class ProtocolError(errdefs.InvalidArgument):
    """The peer broke the framing rules; the connection cannot be used any more."""


# Frames are namedtuples, not attrs classes: this module is on the CLI's start-up path,
# where every import is paid on each command.


class Metadata(namedtuple("Metadata", "namespace lease deadline fds", defaults=(None, None, None, None))):
    """Per-request metadata; ``deadline`` is absolute, in unix nanoseconds;
    ``fds`` counts the descriptors sent beside the request (None: none)."""

    __slots__ = ()

    def to_wire(self) -> dict:
        return {k: v for k, v in zip(self._fields, self) if v is not None}


class Request(namedtuple("Request", "id method params meta", defaults=(Metadata(),))):
    __slots__ = ()


class Response(namedtuple("Response", "id error result", defaults=(None, None))):
    __slots__ = ()


class Notification(namedtuple("Notification", "method params")):
    __slots__ = ()


class StreamItem(namedtuple("StreamItem", "id item")):
    __slots__ = ()


class StreamEnd(namedtuple("StreamEnd", "id")):
    __slots__ = ()


class Cancel(namedtuple("Cancel", "id")):
    __slots__ = ()


Event = Request | Response | Notification | StreamItem | StreamEnd | Cancel


def encode(event: Event) -> bytes:
    """Serialize one event to its frame."""
    if isinstance(event, Request):
        return _pack([REQUEST, event.id, event.method, [event.params, event.meta.to_wire()]])
    if isinstance(event, Response):
        err = event.error.to_wire() if event.error is not None else None
        return _pack([RESPONSE, event.id, err, None if err else event.result])
    if isinstance(event, StreamItem):
        return _pack([NOTIFICATION, ITEM, [event.id, event.item]])
    if isinstance(event, StreamEnd):
        return _pack([NOTIFICATION, END, [event.id]])
    if isinstance(event, Cancel):
        return _pack([NOTIFICATION, CANCEL, [event.id]])
    if isinstance(event, Notification):
        return _pack([NOTIFICATION, event.method, event.params])
    raise TypeError(f"not a wire event: {event!r}")


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True, datetime=False)


class Connection:
    """Parses a byte stream of frames into events; one per side of a socket."""

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame_size = max_frame_size
        self._unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=False,
            max_buffer_size=max_frame_size,
            use_list=True,
        )
        self._error: ProtocolError | None = None

    @property
    def broken(self) -> bool:
        return self._error is not None

    def receive_data(self, data: bytes) -> None:
        self._check()
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            self._fail(f"frame larger than the limit of {self.max_frame_size} bytes")

    def next_event(self) -> Event | None:
        """The next complete event, or None when more bytes are needed."""
        self._check()
        try:
            frame = self._unpacker.unpack()
        except msgpack.OutOfData:
            return None
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as exc:
            self._fail(f"malformed msgpack: {exc}")
        except Exception as exc:  # msgpack raises assorted errors on hostile input
            self._fail(f"malformed msgpack: {type(exc).__name__}: {exc}")
        try:
            return parse_frame(frame)
        except ProtocolError as exc:
            self._fail(exc.message)

    def events(self):
        while (event := self.next_event()) is not None:
            yield event

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _fail(self, message: str):
        self._error = ProtocolError(message)
        raise self._error


def parse_frame(frame: Any) -> Event:
    """Validate one decoded msgpack object as a MessagePack-RPC frame."""
    if not isinstance(frame, list) or not frame:
        raise ProtocolError(f"frame must be a non-empty array, got {type(frame).__name__}")
    kind = frame[0]
    if kind == REQUEST and len(frame) == 4:
        _, rid, method, params = frame
        _check_id(rid)
        if not isinstance(method, str) or not method:
            raise ProtocolError("request method must be a non-empty string")
        args, meta = _split_params(params)
        return Request(id=rid, method=method, params=args, meta=meta)
    if kind == RESPONSE and len(frame) == 4:
        _, rid, err, result = frame
        _check_id(rid)
        return Response(id=rid, error=None if err is None else errdefs.from_wire(err), result=result)
    if kind == NOTIFICATION and len(frame) == 3:
        _, method, params = frame
        if not isinstance(method, str) or not isinstance(params, list):
            raise ProtocolError("notification must be [2, method, array]")
        if method in (ITEM, END, CANCEL):
            if not params:
                raise ProtocolError(f"{method} needs a request id")
            _check_id(params[0])
            if method == ITEM:
                if len(params) != 2:
                    raise ProtocolError("$item takes [id, item]")
                return StreamItem(id=params[0], item=params[1])
            return StreamEnd(id=params[0]) if method == END else Cancel(id=params[0])
        return Notification(method=method, params=params)
    raise ProtocolError(f"unknown frame type {kind!r} of length {len(frame)}")


def _check_id(rid: Any) -> None:
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid < 2**32:
        raise ProtocolError(f"message id must be an unsigned 32-bit integer, got {rid!r}")


def _split_params(params: Any) -> tuple[dict, Metadata]:
    if isinstance(params, dict):  # lenient: a bare map is the arguments
        return params, Metadata()
    if not isinstance(params, list) or len(params) > 2:
        raise ProtocolError("request params must be [arguments] or [arguments, metadata]")
    args = params[0] if params else {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError("request arguments must be a map")
    meta = params[1] if len(params) == 2 else {}
    if not isinstance(meta, dict):
        raise ProtocolError("request metadata must be a map")
    unknown = set(meta) - {"namespace", "lease", "deadline", "fds"}
    if unknown:
        raise ProtocolError(f"unknown request metadata {sorted(map(str, unknown))}")
    for key in ("namespace", "lease"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise ProtocolError(f"metadata {key} must be a string")
    deadline = meta.get("deadline")
    if deadline is not None and (not isinstance(deadline, int) or isinstance(deadline, bool)):
        raise ProtocolError("metadata deadline must be an integer (unix nanoseconds)")
    fds = meta.get("fds")
    if fds is not None and (not isinstance(fds, int) or isinstance(fds, bool) or not 0 <= fds <= MAX_CALL_FDS):
        raise ProtocolError(f"metadata fds must be an integer from 0 to {MAX_CALL_FDS}")
    return args, Metadata(namespace=meta.get("namespace"), lease=meta.get("lease"), deadline=deadline, fds=fds)
