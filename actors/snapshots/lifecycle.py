"""The snapshot lifecycle as one table: which kinds allow which operation.

    prepare ──► ACTIVE ──commit──► COMMITTED      view ──► VIEW
    (any kind) ──remove──► gone, unless it has children

A refused operation raises its typed error before anything changes.
"""

from __future__ import annotations

from wire.errdefs import FailedPrecondition, InvalidArgument

from .types import Kind

_ALL = frozenset({Kind.VIEW, Kind.ACTIVE, Kind.COMMITTED})

# operation on an existing snapshot -> kinds for which it is legal
ALLOWED: dict[str, frozenset[Kind]] = {
    "stat": _ALL,
    "update": _ALL,
    "usage": _ALL,
    "remove": _ALL,
    "mounts": frozenset({Kind.VIEW, Kind.ACTIVE}),
    "commit": frozenset({Kind.ACTIVE}),
}

# kinds a snapshot may have to serve as the parent of a new one
PARENT_KINDS = frozenset({Kind.COMMITTED})


def check(operation: str, key: str, kind: Kind) -> None:
    """FailedPrecondition when ``operation`` is illegal on a ``kind`` snapshot."""
    if kind not in ALLOWED[operation]:
        raise FailedPrecondition(
            f"snapshot {key!r}: {operation} not allowed on a {kind.label} snapshot"
        )


def check_parent(key: str, parent: str, kind: Kind) -> None:
    """InvalidArgument when ``parent`` may not be the parent of ``key``."""
    if kind not in PARENT_KINDS:
        raise InvalidArgument(
            f"snapshot {key!r}: parent {parent!r} is {kind.label}, not committed"
        )


def check_key(key: object, what: str = "key") -> str:
    if not isinstance(key, str) or not key:
        raise InvalidArgument(f"snapshot {what} {key!r}: must be a non-empty string")
    return key
