"""Start the plugin graph: init each plugin in dependency order, record every result."""

from __future__ import annotations

import logging
import os
from typing import Any

import trio

from actors.core import Supervisor
from actors.timeouts import PLUGIN_CLOSE, PLUGIN_INIT, Timeouts
from wire import errdefs

from . import registry
from .context import InitContext, Plugin, PluginSet
from .registry import Registration, SkipPlugin

log = logging.getLogger("dockyard.plugins")


class RequiredPluginFailed(Exception):
    """A plugin named in ``required_plugins`` is missing, skipped or failed."""


async def load_plugins(
    *,
    config: Any,
    timeouts: Timeouts,
    supervisor: Supervisor,
    registrations: list[Registration] | None = None,
) -> PluginSet:
    """Init every enabled plugin; failures are recorded and their dependents skipped."""
    regs = registry.registrations() if registrations is None else registrations
    disabled = set(config.disabled_plugins)
    ordered = registry.order(regs, disabled)
    known = {r.uri for r in regs}
    for uri in config.required_plugins:
        if uri not in known:
            raise RequiredPluginFailed(f"required plugin {uri} is not registered")
        if uri in disabled:
            raise RequiredPluginFailed(f"required plugin {uri} is disabled")
    plugins = PluginSet()
    for reg in ordered:
        plugin = Plugin(registration=reg)
        plugins.add(plugin)
        blocker = _missing_requirement(reg, plugins)
        if blocker is not None:
            plugin.skipped = True
            plugin.error = errdefs.FailedPrecondition(f"skipped: required plugin {blocker} is not available")
            log.warning("plugin %s skipped: %s is not available", reg.uri, blocker)
        else:
            await _init_one(plugin, reg, config, timeouts, supervisor, plugins)
        if reg.uri in config.required_plugins and (plugin.error is not None or plugin.skipped):
            reason = plugin.error if plugin.error is not None else "skipped"
            raise RequiredPluginFailed(f"required plugin {reg.uri} did not start: {reason}")
    return plugins


def _missing_requirement(reg: Registration, plugins: PluginSet) -> str | None:
    """The plugin (or type) ``reg`` needs that is absent or did not start, if any."""
    if registry.ALL in reg.requires:
        return None
    for t in reg.requires:
        of_type = [p for p in plugins if p.registration.type == t]
        # A type with no plugins at all is the plugin's own business (get_single raises NotFound).
        if of_type and all(p.error is not None or p.skipped for p in of_type):
            return of_type[0].uri
    return None


async def _init_one(plugin, reg, config, timeouts, supervisor, plugins) -> None:
    try:
        plugin_config = config.plugin_config(reg)
    except errdefs.DockyardError as exc:
        plugin.error = exc
        log.error("plugin %s failed: %s", reg.uri, exc)
        return
    ic = InitContext(
        registration=reg,
        root=os.path.join(config.root, reg.uri),
        state=os.path.join(config.state, reg.uri),
        daemon_root=config.root,
        daemon_state=config.state,
        address=config.rpc_address,
        config=plugin_config,
        timeouts=timeouts,
        plugins=plugins,
        supervisor=supervisor,
        plugin=plugin,
        daemon=config,
    )
    try:
        with trio.fail_after(timeouts(PLUGIN_INIT)):
            plugin.instance = await reg.init(ic)
        log.info("plugin %s loaded", reg.uri)
    except SkipPlugin as exc:
        plugin.skipped = True
        plugin.error = exc
        log.info("plugin %s skipped: %s", reg.uri, exc)
    except trio.TooSlowError:
        plugin.error = errdefs.DeadlineExceeded(f"init took longer than {timeouts(PLUGIN_INIT):g}s")
        log.error("plugin %s failed: %s", reg.uri, plugin.error)
    except Exception as exc:
        plugin.error = exc
        log.error("plugin %s failed: %s", reg.uri, exc, exc_info=not isinstance(exc, errdefs.DockyardError))


async def close_plugins(plugins: PluginSet, timeouts: Timeouts) -> None:
    """Close instances in reverse init order, each within its budget."""
    for plugin in reversed(list(plugins)):
        close = getattr(plugin.instance, "aclose", None)
        if close is None:
            continue
        with trio.move_on_after(timeouts(PLUGIN_CLOSE)) as scope:
            try:
                await close()
            except Exception:
                log.exception("plugin %s failed to close", plugin.uri)
        if scope.cancelled_caught:
            log.error("plugin %s did not close within %gs", plugin.uri, timeouts(PLUGIN_CLOSE))
