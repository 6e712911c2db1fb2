"""What a plugin sees while it starts, and the set of plugins started so far."""

from __future__ import annotations

import os
from typing import Any

import attrs

from actors.core import ActorRef, ChildSpec, Supervisor
from actors.timeouts import Timeouts
from wire import errdefs

from .registry import Registration


@attrs.define(eq=False)
class Plugin:
    """One entry of the plugin set: a registration and how its init went."""

    registration: Registration
    instance: Any = None
    error: BaseException | None = None
    skipped: bool = False
    exports: dict[str, str] = attrs.Factory(dict)
    capabilities: list[str] = attrs.Factory(list)

    @property
    def uri(self) -> str:
        return self.registration.uri

    @property
    def status(self) -> str:
        if self.skipped:
            return "skip"
        return "error" if self.error is not None else "ok"


class PluginSet:
    """Lookups over the plugins initialized so far (in init order)."""

    def __init__(self) -> None:
        self._plugins: list[Plugin] = []

    def add(self, plugin: Plugin) -> None:
        self._plugins.append(plugin)

    def __iter__(self):
        return iter(self._plugins)

    def get_single(self, type: str) -> Any:
        found = [p for p in self._plugins if p.registration.type == type and not p.skipped]
        if not found:
            raise errdefs.NotFound(f"no plugin of type {type}")
        if len(found) > 1:
            raise errdefs.FailedPrecondition(f"more than one plugin of type {type}")
        plugin = found[0]
        if plugin.error is not None:
            raise errdefs.FailedPrecondition(f"plugin {plugin.uri} failed: {plugin.error}")
        return plugin.instance

    def get_by_type(self, type: str) -> dict[str, Any]:
        out = {}
        for p in self._plugins:
            if p.registration.type != type or p.skipped:
                continue
            if p.error is not None:
                raise errdefs.FailedPrecondition(f"plugin {p.uri} failed: {p.error}")
            out[p.registration.id] = p.instance
        return out

    def get_by_id(self, type: str, id: str) -> Any:
        for p in self._plugins:
            if p.registration.type == type and p.registration.id == id and not p.skipped:
                if p.error is not None:
                    raise errdefs.FailedPrecondition(f"plugin {p.uri} failed: {p.error}")
                return p.instance
        raise errdefs.NotFound(f"plugin {type}.{id} not found")

    def instances(self) -> list[Any]:
        return [p.instance for p in self._plugins if p.instance is not None]


@attrs.define(eq=False)
class InitContext:
    """Handed to a plugin's ``init``: where it lives, its config, its dependencies."""

    registration: Registration
    root: str  # <daemon root>/<uri>
    state: str  # <daemon state>/<uri>
    daemon_root: str
    daemon_state: str
    address: str
    config: Any
    timeouts: Timeouts
    plugins: PluginSet
    supervisor: Supervisor
    plugin: Plugin
    daemon: Any = None  # the whole daemon Config, for the few plugins that serve daemon-wide settings

    async def spawn(self, spec: ChildSpec) -> ActorRef | Supervisor:
        """Start an actor (or subtree) owned by this plugin, under the plugins supervisor."""
        return await self.supervisor.start_child(spec)

    def ensure_root(self) -> str:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        return self.root

    def ensure_state(self) -> str:
        os.makedirs(self.state, mode=0o711, exist_ok=True)
        return self.state

    def export(self, key: str, value: str) -> None:
        self.plugin.exports[key] = value

    def capability(self, name: str) -> None:
        self.plugin.capabilities.append(name)
