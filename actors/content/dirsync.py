"""Group fsync of a directory: concurrent commits into one directory share fsyncs.

A rename into ``blobs/<alg>/`` is durable once the directory is fsynced.  When
several writers commit at once, one fsync that *starts* after a writer's
rename covers that writer too, so each caller waits for the first such fsync
instead of issuing its own.  Thread-safe; plain blocking code.
"""

from __future__ import annotations

import os
import threading

import attrs


@attrs.define
class _DirState:
    requested: int = 0  # ticket of the latest caller
    done: int = 0  # every ticket up to this one is durable
    running: bool = False


_cond = threading.Condition()
_dirs: dict[str, _DirState] = {}


def fsync_dir(path: str) -> None:
    """Make every rename into ``path`` that happened before this call durable."""
    with _cond:
        state = _dirs.setdefault(path, _DirState())
        state.requested += 1
        ticket = state.requested
        while True:
            if state.done >= ticket:
                return
            if not state.running:
                state.running = True
                covers = state.requested  # callers so far renamed before this fsync starts
                break
            _cond.wait()
    ok = False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        ok = True
    finally:
        with _cond:
            state.running = False
            if ok:
                state.done = max(state.done, covers)
            _cond.notify_all()
