"""The one table of named timeouts.

Every ask, RPC, shim call, runc call and shutdown step takes its deadline from
here.  Modules register their names with defaults at import time (as containerd's
``timeout.Set`` does); the ``[timeouts]`` table of the config overrides them.
"""

from __future__ import annotations

import re

from wire import errdefs

_DEFAULTS: dict[str, float] = {}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h)?\s*$")
_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def register(name: str, default: float) -> str:
    """Declare a named timeout (seconds); returns the name for use as a constant."""
    _DEFAULTS.setdefault(name, float(default))
    return name


def parse_duration(value: str | int | float, what: str = "duration") -> float:
    """``"5s"``, ``"100ms"``, ``"2m"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise errdefs.InvalidArgument(f"{what}: not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise errdefs.InvalidArgument(f"{what}: negative duration {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise errdefs.InvalidArgument(f"{what}: not a duration: {value!r} (use e.g. 5s, 250ms, 2m)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


class Timeouts:
    """Resolved timeouts: registered defaults overridden by the config table."""

    def __init__(self, overrides: dict[str, str | float] | None = None) -> None:
        self._values = dict(_DEFAULTS)
        for name, value in (overrides or {}).items():
            self._values[name] = parse_duration(value, f"timeouts.{name}")

    def __call__(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            if name in _DEFAULTS:
                return _DEFAULTS[name]
            raise KeyError(f"unregistered timeout {name!r}") from None

    def table(self) -> dict[str, float]:
        merged = dict(_DEFAULTS)
        merged.update(self._values)
        return dict(sorted(merged.items()))


def defaults() -> dict[str, float]:
    return dict(sorted(_DEFAULTS.items()))


# The daemon's own timeouts; plugins register theirs next to the code that waits.
ACTOR_ASK = register("io.dockyard.timeout.actor.ask", 10.0)
RPC_REQUEST = register("io.dockyard.timeout.rpc.request", 30.0)
RPC_DRAIN = register("io.dockyard.timeout.rpc.drain", 2.0)
PLUGIN_INIT = register("io.dockyard.timeout.plugin.init", 30.0)
PLUGIN_CLOSE = register("io.dockyard.timeout.plugin.close", 5.0)
SHUTDOWN = register("io.dockyard.timeout.shutdown", 10.0)
