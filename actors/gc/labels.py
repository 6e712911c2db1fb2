"""containerd's GC labels, read exactly as its collector reads them (reference §13).

Keys are matched like containerd: a reference key is the exact key or the key
followed by ``.`` or ``/`` and any suffix (``containerd.io/gc.ref.content.m.0``);
snapshot keys carry the snapshotter after the prefix, cut at the first ``/``.
Values are the referenced object's name.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
import time
from typing import Callable, Iterator

from actors.content.timestamps import parse_rfc3339_nano
from oci.identity import (
    LABEL_GC_BREF_CONTAINER, LABEL_GC_BREF_CONTENT, LABEL_GC_BREF_IMAGE, LABEL_GC_BREF_SNAPSHOT_PREFIX,
    LABEL_GC_EXPIRE, LABEL_GC_FLAT, LABEL_GC_REF_CONTENT, LABEL_GC_REF_IMAGE, LABEL_GC_REF_SNAPSHOT_PREFIX,
    LABEL_GC_ROOT,
)
from wire.errdefs import InvalidArgument

from .nodes import CONTAINER, CONTENT, IMAGE, Node, snapshot_node

LABEL_GC_COND_SNAPSHOT = "containerd.io/gc.cond.snapshot"
LABEL_GC_COND_VALUE_USEDAT = "containerd.io/gc.cond.value-usedat"

#: every GC label starts with this; records without it in their label text are skipped fast
GC_LABEL_MARK = "containerd.io/gc."

__all__ = [
    "GC_LABEL_MARK", "LABEL_GC_COND_SNAPSHOT", "LABEL_GC_COND_VALUE_USEDAT", "LABEL_GC_EXPIRE", "LABEL_GC_FLAT",
    "back_refs", "conditional_refs", "expired", "has_root_label", "parse_go_duration", "refs", "usedat",
]


def _named(key: str, base: str) -> bool:
    """``key`` is ``base`` or ``base`` + ``.``/``/`` + a name."""
    if not key.startswith(base):
        return False
    return len(key) == len(base) or key[len(base)] in "./"


def _snapshotter(key: str, prefix: str) -> str:
    return key[len(prefix):].split("/", 1)[0]


def refs(namespace: str, labels: dict[str, str]) -> Iterator[tuple[Node, str]]:
    """Forward references: (referenced node, label key)."""
    for key, value in labels.items():
        if not key.startswith("containerd.io/gc.ref."):
            continue
        if _named(key, LABEL_GC_REF_CONTENT):
            yield Node(CONTENT, namespace, value), key
        elif _named(key, LABEL_GC_REF_IMAGE):
            yield Node(IMAGE, namespace, value), key
        elif key.startswith(LABEL_GC_REF_SNAPSHOT_PREFIX):
            yield snapshot_node(namespace, _snapshotter(key, LABEL_GC_REF_SNAPSHOT_PREFIX), value), key


def back_refs(namespace: str, labels: dict[str, str]) -> Iterator[tuple[Node, str]]:
    """Back-references: (node that should point at the labelled object, label key)."""
    for key, value in labels.items():
        if not key.startswith("containerd.io/gc.bref."):
            continue
        if _named(key, LABEL_GC_BREF_CONTAINER):
            yield Node(CONTAINER, namespace, value), key
        elif _named(key, LABEL_GC_BREF_CONTENT):
            yield Node(CONTENT, namespace, value), key
        elif _named(key, LABEL_GC_BREF_IMAGE):
            yield Node(IMAGE, namespace, value), key
        elif key.startswith(LABEL_GC_BREF_SNAPSHOT_PREFIX):
            yield snapshot_node(namespace, _snapshotter(key, LABEL_GC_BREF_SNAPSHOT_PREFIX), value), key


def has_root_label(labels: dict[str, str]) -> str | None:
    """The ``containerd.io/gc.root`` label key (prefix match, as containerd), if any."""
    for key in labels:
        if key.startswith(LABEL_GC_ROOT):
            return key
    return None


def parse_time(text: str) -> int | None:
    """RFC 3339 → ns, or None when malformed (containerd ignores such values)."""
    if text != text.strip():
        return None
    try:
        return parse_rfc3339_nano(text)
    except InvalidArgument:
        return None


def expired(labels: dict[str, str], now_ns: int) -> bool:
    """``containerd.io/gc.expire`` is in the past; a malformed value means no expiry."""
    value = labels.get(LABEL_GC_EXPIRE)
    if value is None:
        return False
    at = parse_time(value)
    return at is not None and now_ns > at


def usedat(labels: dict[str, str]) -> int | None:
    """The snapshot's ``containerd.io/gc.cond.value-usedat`` time, if set and valid."""
    value = labels.get(LABEL_GC_COND_VALUE_USEDAT)
    return None if value is None else parse_time(value)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}


def parse_go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` (``1h30m``, ``-5s``, ``0``) → ns, or None if malformed."""
    sign = 1
    if text[:1] and text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        return None
    total = 0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            return None
        total += int(float(match.group(1)) * _UNIT_NS[match.group(2)])
        pos = match.end()
    return sign * total


def conditional_refs(namespace: str, labels: dict[str, str]) -> Iterator[tuple[Node, str, Callable[[int, int], bool]]]:
    """``containerd.io/gc.cond.snapshot.<sn>`` = ``usedat<DUR,usedat>DUR|key``:
    (snapshot node, label key, test(usedat_ns, now_ns)); the conditions are ORed."""
    for key, value in labels.items():
        if not key.startswith(LABEL_GC_COND_SNAPSHOT):
            continue
        snapshotter = key[len(LABEL_GC_COND_SNAPSHOT):].lstrip("./").split("/", 1)[0]
        conditions, sep, name = value.partition("|")
        if not sep:
            continue
        node = snapshot_node(namespace, snapshotter, name)
        for condition in conditions.split(","):
            match = re.fullmatch(r"usedat([<>])(.*)", condition)
            if match is None:
                continue
            limit = parse_go_duration(match.group(2))
            if limit is None:
                continue
            if match.group(1) == "<":
                yield node, key, (lambda used, now, d=limit: now - used < d)
            else:
                yield node, key, (lambda used, now, d=limit: now - used > d)


def now_ns() -> int:
    return time.time_ns()
