"""Printing results the way ctr does (tab-aligned tables) or as JSON for machines."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: every import is paid by each CLI command
    from typing import Any, Iterable, Sequence


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out=None) -> None:
    """Columns padded like Go's tabwriter(minwidth 1, padding 1): cell width = widest + 1."""
    out = out or sys.stdout
    rows = [[_cell(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers), *rows]:
        line = "".join(cell.ljust(widths[i] + 1) for i, cell in enumerate(row[:-1]))
        out.write((line + (row[-1] if row else "")).rstrip() + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return str(value)


def to_json(value: Any, out=None, *, pretty: bool = True) -> None:
    import json

    out = out or sys.stdout
    out.write(json.dumps(value, indent=2 if pretty else None, sort_keys=True, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode()
    raise TypeError(f"cannot print {type(value).__name__}")


def format_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_timestamp(ns: int) -> str:
    """Go's time.Time String() layout, as ctr prints event timestamps."""
    import time

    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d} +0000 UTC"
