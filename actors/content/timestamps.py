"""RFC 3339 timestamps with nanoseconds, as text files in an ingest dir.

Times are int nanoseconds since the epoch everywhere in dockyard; on disk they
are RFC 3339 (UTC, ``Z``, trailing fraction zeros dropped), like Go's
``time.RFC3339Nano`` which containerd writes.
"""

from __future__ import annotations

import calendar
import re
import time

from wire.errdefs import InvalidArgument

_NS = 1_000_000_000

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def now_ns() -> int:
    return time.time_ns()


def format_rfc3339_nano(ns: int) -> str:
    seconds, frac = divmod(ns, _NS)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def parse_rfc3339_nano(text: str) -> int:
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise InvalidArgument(f"timestamp {text!r}: not RFC 3339")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    frac = match.group(7) or ""
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    return seconds * _NS + int(frac.ljust(9, "0") or 0)
