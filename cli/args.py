"""Argument parsing shared by the commands (no business logic)."""

from __future__ import annotations

from wire import errdefs


def parse_labels(items: list[str], *, bare_is_true: bool = False) -> dict[str, str]:
    """ctr's ``KEY=VALUE`` label arguments (``KEY=`` clears a label).

    With ``bare_is_true`` a lone ``KEY`` means ``KEY=true``, as ``ctr content label`` takes it.
    """
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or (not sep and not bare_is_true):
            raise errdefs.InvalidArgument(f"label {item!r} must be KEY=VALUE")
        labels[key] = value if sep else "true"
    return labels
