"""Snapshot value types: Kind, Info, Usage."""

from __future__ import annotations

import enum

import attrs

from wire.errdefs import InvalidArgument


class Kind(enum.IntEnum):
    """containerd's snapshot kinds, with their wire numbers."""

    UNKNOWN = 0
    VIEW = 1
    ACTIVE = 2
    COMMITTED = 3

    @property
    def label(self) -> str:
        """The filter value: ``view``, ``active``, ``committed``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Kind:
        try:
            kind = cls[text.upper()]
        except KeyError:
            raise InvalidArgument(f"snapshot kind {text!r}: unknown") from None
        if kind is cls.UNKNOWN:
            raise InvalidArgument(f"snapshot kind {text!r}: unknown")
        return kind


def _labels(value) -> dict[str, str]:
    return dict(value or {})


@attrs.frozen(kw_only=True)
class Info:
    """What ``stat`` tells about one snapshot.  Times are int nanoseconds."""

    name: str
    kind: Kind
    parent: str = ""
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created: int = 0
    updated: int = 0


@attrs.frozen(kw_only=True)
class Usage:
    """Disk use: bytes allocated (st_blocks × 512) and distinct inodes."""

    size: int = 0
    inodes: int = 0
