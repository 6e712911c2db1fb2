"""Kernel overlayfs feature probes."""

from __future__ import annotations

import functools

INDEX_PARAMETER = "/sys/module/overlay/parameters/index"


@functools.cache
def overlay_supports_index_option(parameter_path: str = INDEX_PARAMETER) -> bool:
    """True when the kernel's overlay module knows ``index=``.

    Snapshotters then pass ``index=off`` so that lower layers can be shared by
    several overlays without the kernel pinning their inodes to one upper.
    """
    try:
        with open(parameter_path, "rb"):
            return True
    except OSError:
        return False
