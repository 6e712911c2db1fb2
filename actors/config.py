"""The daemon's TOML config (``/etc/dockyard/config.toml`` or ``--config``).

Top-level settings are typed attrs classes; each plugin's table
``[plugins."<uri>"]`` is decoded over that plugin's own config class, so a typo
in a key is an error at start-up, not a silently ignored setting.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

import attrs
import tomli_w

from wire import errdefs
from wire.codec import DEFAULT_MAX_FRAME
from wire.converter import converter, structure, unstructure

from . import timeouts as timeouts_mod
from .plugin.registry import Registration

DEFAULT_CONFIG_PATH = "/etc/dockyard/config.toml"
DEFAULT_ROOT = "/var/lib/dockyard"
DEFAULT_STATE = "/run/dockyard"


@attrs.frozen(kw_only=True)
class RPCConfig:
    address: str = ""  # default: <state>/dockyard.sock
    uid: int = 0
    gid: int = 0
    max_frame_size: int = DEFAULT_MAX_FRAME


@attrs.frozen(kw_only=True)
class WebsocketConfig:
    enabled: bool = True
    address: str = "127.0.0.1:10011"  # port 0 picks a free port (written to <state>/websocket.addr)
    token_file: str = ""  # default: <state>/events.token, created 0600 when missing


@attrs.frozen(kw_only=True)
class DebugConfig:
    level: str = "info"


@attrs.frozen(kw_only=True)
class Config:
    version: int = 1
    root: str = DEFAULT_ROOT
    state: str = DEFAULT_STATE
    required_plugins: list[str] = attrs.Factory(list)
    disabled_plugins: list[str] = attrs.Factory(list)
    rpc: RPCConfig = RPCConfig()
    websocket: WebsocketConfig = WebsocketConfig()
    debug: DebugConfig = DebugConfig()
    timeouts: dict[str, str] = attrs.Factory(dict)
    plugins: dict[str, dict[str, Any]] = attrs.Factory(dict)

    def plugin_config(self, reg: Registration) -> Any:
        raw = self.plugins.get(reg.uri, {})
        if reg.config is None:
            if raw:
                raise errdefs.InvalidArgument(f"plugin {reg.uri} takes no configuration")
            return None
        return structure(raw, reg.config)

    @property
    def rpc_address(self) -> str:
        return self.rpc.address or os.path.join(self.state, "dockyard.sock")

    @property
    def token_file(self) -> str:
        return self.websocket.token_file or os.path.join(self.state, "events.token")


def load(path: str | None, *, must_exist: bool = False) -> Config:
    """Read the config file; a missing default file means all defaults."""
    file = path or DEFAULT_CONFIG_PATH
    try:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        if must_exist or path:
            raise errdefs.NotFound(f"config file {file}: not found") from None
        data = {}
    except tomllib.TOMLDecodeError as exc:
        raise errdefs.InvalidArgument(f"config file {file}: {exc}") from None
    return parse(data, source=file)


def parse(data: dict, *, source: str = "<config>") -> Config:
    if data.get("version", 1) != 1:
        raise errdefs.InvalidArgument(f"{source}: unsupported config version {data.get('version')!r}")
    try:
        config = structure(data, Config)
    except errdefs.InvalidArgument as exc:
        raise errdefs.InvalidArgument(f"{source}: {exc.message}") from None
    timeouts_mod.Timeouts(config.timeouts)  # validate durations now
    if os.path.abspath(config.root) == os.path.abspath(config.state):
        raise errdefs.InvalidArgument(f"{source}: root and state must be different directories")
    return config


def check_plugin_tables(config: Config, registrations: list[Registration]) -> list[str]:
    """Decode every ``[plugins."<uri>"]`` table now; returns the URIs no plugin is registered for."""
    known = {reg.uri: reg for reg in registrations}
    for uri, reg in known.items():
        if uri in config.plugins:
            config.plugin_config(reg)
    return sorted(set(config.plugins) - set(known))


def default_toml(registrations: list[Registration]) -> str:
    """The full default config: every setting, every timeout, every plugin's table."""
    doc = unstructure(Config())
    doc["timeouts"] = {k: timeouts_mod.format_duration(v) for k, v in timeouts_mod.defaults().items()}
    plugins = {}
    for reg in registrations:
        if reg.config is not None:
            plugins[reg.uri] = _drop_none(converter.unstructure(reg.config()))
    doc["plugins"] = plugins
    return tomli_w.dumps(_drop_none(doc))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value
