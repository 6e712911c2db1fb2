"""Runtime names → shim binaries: ``io.dockyard.runc.v1`` → ``dockyard-shim-runc-v1``.

An absolute path is used as is; a name with ``/`` that is not absolute is
invalid; otherwise the last two dot-separated parts name the binary, looked up
next to the daemon's executable, then in ``$PATH`` (cached per binary name).
"""

from __future__ import annotations

import os
import shutil
import sys

from wire import errdefs

_cache: dict[str, str] = {}


def binary_name(runtime: str) -> str:
    if not runtime:
        raise errdefs.InvalidArgument("runtime name must not be empty")
    if "/" in runtime:
        raise errdefs.InvalidArgument(f"runtime {runtime!r}: a name with '/' must be an absolute path")
    parts = runtime.split(".")
    if len(parts) < 2 or not all(parts[-2:]):
        raise errdefs.InvalidArgument(f"runtime {runtime!r}: not a <...>.<name>.<version> runtime name")
    return f"dockyard-shim-{parts[-2]}-{parts[-1]}"


def resolve(runtime: str) -> str:
    """The shim binary for ``runtime`` (NotFound when it is nowhere)."""
    if os.path.isabs(runtime):
        if not os.access(runtime, os.X_OK):
            raise errdefs.NotFound(f"runtime {runtime!r}: not an executable file")
        return runtime
    name = binary_name(runtime)
    found = _cache.get(name)
    if found and os.access(found, os.X_OK):
        return found
    dirs = [os.path.dirname(os.path.abspath(sys.argv[0])), os.path.dirname(sys.executable)]
    for d in dirs:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            _cache[name] = candidate
            return candidate
    found = shutil.which(name)
    if found is None:
        raise errdefs.NotFound(f"runtime {runtime!r}: shim binary {name} not found next to the daemon or in PATH")
    _cache[name] = found
    return found
