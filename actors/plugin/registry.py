"""Plugin registrations: what a plugin is, before anything runs.

A plugin is a small declaration: type, id, the *types* it requires, a typed
config class with defaults, and an async ``init(InitContext) -> instance``.
Modules register at import time; ``actors.builtin`` imports the built-in ones.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import attrs

from wire import errdefs

# Plugin types (prefix io.dockyard.), as containerd's.
CONTENT = "io.dockyard.content.v1"
SNAPSHOTTER = "io.dockyard.snapshotter.v1"
METADATA = "io.dockyard.metadata.v1"
DIFFER = "io.dockyard.differ.v1"
GC = "io.dockyard.gc.v1"
EVENT = "io.dockyard.event.v1"
LEASE = "io.dockyard.lease.v1"
SERVICE = "io.dockyard.service.v1"
SERVER = "io.dockyard.server.v1"
RUNTIME = "io.dockyard.runtime.v1"
INTERNAL = "io.dockyard.internal.v1"
TRANSFER = "io.dockyard.transfer.v1"
CRI = "io.dockyard.cri.v1"

ALL = "*"


class SkipPlugin(Exception):
    """Raised by ``init`` when the plugin does not apply here (informational, not a failure)."""


@attrs.frozen(kw_only=True)
class Registration:
    type: str
    id: str
    init: Callable[[Any], Awaitable[Any]]
    requires: tuple[str, ...] = ()
    config: type | None = None

    @property
    def uri(self) -> str:
        return f"{self.type}.{self.id}"


_REGISTRY: list[Registration] = []


def register(registration: Registration) -> Registration:
    if not registration.type or not registration.id:
        raise ValueError(f"plugin registration needs a type and an id: {registration!r}")
    if any(r.uri == registration.uri for r in _REGISTRY):
        raise ValueError(f"plugin {registration.uri} registered twice")
    if ALL in registration.requires and len(registration.requires) != 1:
        raise ValueError(f"plugin {registration.uri}: '*' must be the only requirement")
    if registration.type in registration.requires:
        raise ValueError(f"plugin {registration.uri} cannot require its own type")
    _REGISTRY.append(registration)
    return registration


def plugin(type: str, id: str, *, requires: tuple[str, ...] = (), config: type | None = None):
    """Decorator form: ``@plugin(SERVICE, "namespaces", requires=(METADATA,))``."""

    def wrap(init: Callable[[Any], Awaitable[Any]]):
        register(Registration(type=type, id=id, init=init, requires=tuple(requires), config=config))
        return init

    return wrap


def registrations() -> list[Registration]:
    return list(_REGISTRY)


def order(registrations: list[Registration], disabled: set[str] = frozenset()) -> list[Registration]:
    """Init order: registration order, each plugin after every plugin of the types it requires."""
    active = [r for r in registrations if r.uri not in disabled]
    placed: list[Registration] = []
    seen: set[str] = set()

    def place(reg: Registration, path: tuple[str, ...]) -> None:
        if reg.uri in seen:
            return
        if reg.uri in path:
            raise errdefs.FailedPrecondition(f"plugin dependency cycle: {' -> '.join(path + (reg.uri,))}")
        wanted = [r for r in active if r is not reg] if ALL in reg.requires else [
            r for t in reg.requires for r in active if r.type == t
        ]
        for dep in wanted:
            if ALL in dep.requires and ALL in reg.requires:
                continue
            place(dep, path + (reg.uri,))
        seen.add(reg.uri)
        placed.append(reg)

    # '*' plugins go last so they can see everything else.
    for reg in [r for r in active if ALL not in r.requires] + [r for r in active if ALL in r.requires]:
        place(reg, ())
    return placed
