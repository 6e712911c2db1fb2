"""The one error vocabulary of dockyard, on every wire and in every layer.

The kinds are containerd's errdefs categories.  An error is raised where it is
detected, as the subclass of its kind, with a message that names the object:

    raise NotFound(f"content {digest}: not found")

Mapping to and from the wire happens here and nowhere else: a kind travels as
its string value (``"not_found"``), the message as text.
"""

from __future__ import annotations

import enum


class Kind(str, enum.Enum):
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    CONFLICT = "conflict"
    NOT_MODIFIED = "not_modified"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    NOT_IMPLEMENTED = "not_implemented"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DATA_LOSS = "data_loss"
    UNAUTHENTICATED = "unauthenticated"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELED = "canceled"


class DockyardError(Exception):
    """Base of every typed error.  ``kind`` says whose fault it is."""

    kind: Kind = Kind.UNKNOWN

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.kind.value.replace("_", " "))

    @property
    def message(self) -> str:
        return str(self.args[0])

    def to_wire(self) -> list:
        return [self.kind.value, self.message]


def _kind_class(kind: Kind) -> type[DockyardError]:
    name = "".join(part.capitalize() for part in kind.value.split("_"))
    return type(name, (DockyardError,), {"kind": kind, "__module__": __name__})


Unknown = _kind_class(Kind.UNKNOWN)
InvalidArgument = _kind_class(Kind.INVALID_ARGUMENT)
NotFound = _kind_class(Kind.NOT_FOUND)
AlreadyExists = _kind_class(Kind.ALREADY_EXISTS)
PermissionDenied = _kind_class(Kind.PERMISSION_DENIED)
ResourceExhausted = _kind_class(Kind.RESOURCE_EXHAUSTED)
FailedPrecondition = _kind_class(Kind.FAILED_PRECONDITION)
Conflict = _kind_class(Kind.CONFLICT)
NotModified = _kind_class(Kind.NOT_MODIFIED)
Aborted = _kind_class(Kind.ABORTED)
OutOfRange = _kind_class(Kind.OUT_OF_RANGE)
NotImplemented_ = _kind_class(Kind.NOT_IMPLEMENTED)
Internal = _kind_class(Kind.INTERNAL)
Unavailable = _kind_class(Kind.UNAVAILABLE)
DataLoss = _kind_class(Kind.DATA_LOSS)
Unauthenticated = _kind_class(Kind.UNAUTHENTICATED)
DeadlineExceeded = _kind_class(Kind.DEADLINE_EXCEEDED)
Canceled = _kind_class(Kind.CANCELED)

_BY_KIND: dict[Kind, type[DockyardError]] = {
    cls.kind: cls
    for cls in (
        Unknown, InvalidArgument, NotFound, AlreadyExists, PermissionDenied,
        ResourceExhausted, FailedPrecondition, Conflict, NotModified, Aborted,
        OutOfRange, NotImplemented_, Internal, Unavailable, DataLoss,
        Unauthenticated, DeadlineExceeded, Canceled,
    )
}


def error_class(kind: Kind | str) -> type[DockyardError]:
    try:
        return _BY_KIND[Kind(kind)]
    except ValueError:
        return Unknown


def from_wire(value: object) -> DockyardError:
    """Rebuild a typed error from its wire form ``[kind, message]``.

    Anything else a peer sends as an error becomes ``Unknown`` carrying its text,
    so a foreign msgpack-rpc server cannot crash a client with an odd error value.
    """
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[1], str):
        return error_class(str(value[0]))(value[1])
    return Unknown(repr(value))


def is_kind(exc: BaseException, kind: Kind) -> bool:
    return isinstance(exc, DockyardError) and exc.kind == kind
