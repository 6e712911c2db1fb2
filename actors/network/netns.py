"""Network namespaces pinned as files (bind mounts of nsfs), made with pyroute2.

``create(path)`` makes a fresh namespace, pins it at ``path`` and brings its
loopback up; ``remove(path)`` unpins it.  pyroute2 makes the directory a shared
bind mount of itself (as ``ip netns`` does); when the last namespace in it is
removed that mount goes too, so nothing is left mounted.  Blocking: call in a
worker thread.  pyroute2 is imported on first use (it costs the daemon ~0.1 s
once, paid only by hosts that run tasks with their own network).

The namespace is made in a short-lived thread of its own: ``unshare(CLONE_NEWNET)``
moves only the calling thread, which pins the namespace, sets loopback up from
inside it and then ends, so no thread ever goes back to work in the wrong
namespace.  (pyroute2's ``netns.create`` forks a child for this: ~70 ms against
~5 ms here.)
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

from wire import errdefs

MNT_DETACH = 2
CLONE_NEWNET = 0x40000000


def create(path: str) -> None:
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    if os.path.exists(path):
        raise errdefs.AlreadyExists(f"netns {path}: already exists")
    failure: list[BaseException] = []
    worker = threading.Thread(target=_create_in_this_thread, args=(path, failure), name="netns-create")
    worker.start()
    worker.join()
    if failure:
        remove(path)
        raise errdefs.Internal(f"netns {path}: create failed: {failure[0]}")


def _create_in_this_thread(path: str, failure: list) -> None:
    """Runs in a thread that ends right after: it is left inside the new namespace."""
    try:
        from pyroute2 import IPRoute, netns

        logging.getLogger("pyroute2").setLevel(logging.WARNING)  # set after import (it resets it); too chatty

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        netns._create(path, pid="thread-self")  # pin this thread's (new) namespace at path
        with IPRoute() as ip:  # a netlink socket of the new namespace
            (index,) = ip.link_lookup(ifname="lo")
            ip.link("set", index=index, state="up")
    except BaseException as exc:  # reported to the caller's thread
        failure.append(exc)


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
