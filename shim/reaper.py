"""The shim as child subreaper: SIGCHLD wakes the loop, every exited child is reaped.

Orphans of runc (the container's init, exec'd processes) are re-parented to the
shim because it is a child subreaper; their exit statuses are recorded here and
handed to whoever claims the pid (a runc call waiting for its own process, or the
process table).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Callable

from .libc import libc

PR_SET_CHILD_SUBREAPER = 36
UNKNOWN_EXIT = 255


def become_subreaper() -> None:
    if libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def exit_status(wait_status: int) -> int:
    """The code a process exited with, or 128+signal when a signal killed it (SIGKILL → 137)."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class Reaper:
    """Reaps every child; ``on_exit(pid, status, exited_at_ns)`` for each one.

    ``watch(pid)`` claims a pid before the loop can reap it (the loop is single
    threaded, so spawning and watching happen before any reaping): its exit goes to
    the returned callback instead of ``on_exit``.
    """

    def __init__(self, loop, on_exit: Callable[[int, int, int], None]) -> None:
        self._loop = loop
        self._on_exit = on_exit
        self._watchers: dict[int, Callable[[int, int], None]] = {}
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._rfd, self._wfd = rfd, wfd
        signal.signal(signal.SIGCHLD, _noop)
        signal.set_wakeup_fd(wfd, warn_on_full_buffer=False)
        loop.watch(rfd, 0x001, self._wake)  # EPOLLIN
        loop.call_soon(self.reap)  # children that exited before we listened

    def watch(self, pid: int, callback: Callable[[int, int], None]) -> None:
        self._watchers[pid] = callback

    def _wake(self, _events: int) -> None:
        try:
            while os.read(self._rfd, 4096):
                pass
        except BlockingIOError:
            pass
        self.reap()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code, at = exit_status(status), time.time_ns()
            watcher = self._watchers.pop(pid, None)
            if watcher is not None:
                watcher(code, at)
            else:
                self._on_exit(pid, code, at)


def _noop(*_args) -> None:
    pass
