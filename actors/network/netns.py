"""Network namespaces pinned as files (bind mounts of nsfs), made with pyroute2.

``create(path)`` makes a fresh namespace, pins it at ``path`` and brings its
loopback up; ``remove(path)`` unpins it.  pyroute2 makes the directory a shared
bind mount of itself (as ``ip netns`` does); when the last namespace in it is
removed that mount goes too, so nothing is left mounted.  Blocking: call in a
worker thread.  pyroute2 is imported on first use (it costs the daemon ~25 MB
and 0.1 s, paid only by hosts that run tasks with their own network).
"""

from __future__ import annotations

import ctypes
import logging
import os

from wire import errdefs

MNT_DETACH = 2

logging.getLogger("pyroute2").setLevel(logging.WARNING)  # its debug output would swamp the daemon's log


def create(path: str) -> None:
    from pyroute2 import NetNS, netns

    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    if os.path.exists(path):
        raise errdefs.AlreadyExists(f"netns {path}: already exists")
    try:
        netns.create(path)
        with NetNS(path) as ns:
            (index,) = ns.link_lookup(ifname="lo")
            ns.link("set", index=index, state="up")
    except Exception as exc:
        remove(path)
        raise errdefs.Internal(f"netns {path}: create failed: {exc}") from None


def remove(path: str) -> None:
    """Unpin ``path`` (fine when it is already gone)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if os.path.exists(path):
        libc.umount2(path.encode(), MNT_DETACH)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    directory = os.path.dirname(path)
    try:
        empty = not os.listdir(directory)
    except FileNotFoundError:
        return
    if empty:
        libc.umount2(directory.encode(), MNT_DETACH)


def exists(path: str) -> bool:
    return os.path.exists(path)
