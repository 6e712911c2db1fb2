"""OOM-kill notices from a container's memory cgroup, as loop readiness.

cgroup v1: an eventfd registered through ``cgroup.event_control`` on
``memory.oom_control``.  cgroup v2: ``memory.events`` polled for POLLPRI.  Either
v1 signals the eventfd at the start of each OOM (and when the cgroup is removed,
which is told apart by the cgroup being gone); v2 re-reads the ``oom_kill``
counter and sends a notice only when it grew.
"""

from __future__ import annotations

import os
from typing import Callable

from .loop import EPOLLPRI

V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


def _cgroup_paths(pid: int) -> tuple[str | None, str | None]:
    """(v1 memory cgroup dir, v2 cgroup dir) of ``pid``, when there are such."""
    v1 = v2 = None
    with open(f"/proc/{pid}/cgroup") as fh:
        for line in fh:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(",") and os.path.isdir(V1_ROOT + path):
                v1 = V1_ROOT + path
            elif controllers == "":
                for root in V2_ROOTS:
                    if os.path.exists(os.path.join(root + path, "memory.events")):
                        v2 = root + path
                        break
    return v1, v2


def _oom_kills(path: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except OSError:
        return -1
    return 0


class OOMWatcher:
    def __init__(self, loop, pid: int, on_oom: Callable[[], None]) -> None:
        self.loop = loop
        self._on_oom = on_oom
        self._fd: int | None = None
        v1, v2 = _cgroup_paths(pid)
        if v1 is not None:
            self._counter = os.path.join(v1, "memory.oom_control")
            efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            ofd = os.open(self._counter, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(os.path.join(v1, "cgroup.event_control"), "w") as ctl:
                    ctl.write(f"{efd} {ofd}")
            except OSError:
                os.close(efd)
                raise
            finally:
                os.close(ofd)
            self._fd = efd
            self._seen = _oom_kills(self._counter)
            loop.watch(efd, 0x001, self._ready_v1)
        elif v2 is not None:
            self._counter = os.path.join(v2, "memory.events")
            self._fd = os.open(self._counter, os.O_RDONLY | os.O_CLOEXEC)
            self._seen = _oom_kills(self._counter)
            loop.watch(self._fd, EPOLLPRI, self._ready_v2)

    def _ready_v1(self, _events: int) -> None:
        # v1 notifies as the OOM starts, before the killer counts its kill: no counter check,
        # only "is the cgroup still there" (its removal signals the eventfd too).
        try:
            os.eventfd_read(self._fd)
        except BlockingIOError:
            return
        if _oom_kills(self._counter) < 0:
            self.close()
            return
        self._on_oom()

    def _ready_v2(self, _events: int) -> None:
        self._check()

    def _check(self) -> None:
        count = _oom_kills(self._counter)
        if count < 0:  # the cgroup is gone
            self.close()
            return
        if count > self._seen:
            self._seen = count
            self._on_oom()

    def close(self) -> None:
        if self._fd is not None:
            self.loop.unwatch(self._fd)
            os.close(self._fd)
            self._fd = None
