"""The plugin graph: registrations, init order, init context, loading."""

from .context import InitContext, Plugin, PluginSet
from .loader import RequiredPluginFailed, close_plugins, load_plugins
from .registry import (
    ALL, CONTENT, CRI, DIFFER, EVENT, GC, INTERNAL, LEASE, METADATA, RUNTIME, SERVER, SERVICE,
    SNAPSHOTTER, TRANSFER, Registration, SkipPlugin, order, plugin, register, registrations,
)

__all__ = [
    "ALL", "CONTENT", "CRI", "DIFFER", "EVENT", "GC", "INTERNAL", "LEASE", "METADATA", "RUNTIME",
    "SERVER", "SERVICE", "SNAPSHOTTER", "TRANSFER", "InitContext", "Plugin", "PluginSet",
    "Registration", "RequiredPluginFailed", "SkipPlugin", "close_plugins", "load_plugins", "order",
    "plugin", "register", "registrations",
]
