"""The process title (``ps`` shows ``dockyard-shim-runc-v1 <ns>/<group> …``).

Uses setproctitle's C extension directly: the package's ``__init__`` imports
``logging``, which would cost every shim ~8 ms of start-up and its memory.
"""

from __future__ import annotations

import os
import sys


_loaded: list = []  # the extension once loaded (a zygote loads it once for all the shims it forks)


def set_title(title: str) -> bool:
    """True when the title was set; False when setproctitle is not installed."""
    if _loaded:
        _loaded[0].setproctitle(title)
        return True
    from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec

    name = "setproctitle._setproctitle"
    for entry in sys.path:
        pkg = os.path.join(entry or ".", "setproctitle")
        for suffix in EXTENSION_SUFFIXES:
            path = os.path.join(pkg, "_setproctitle" + suffix)
            if os.path.isfile(path):
                loader = ExtensionFileLoader(name, path)
                spec = ModuleSpec(name, loader, origin=path)
                module = loader.create_module(spec)
                loader.exec_module(module)
                module.setproctitle(title)
                _loaded.append(module)
                return True
    return False
