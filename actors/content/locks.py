"""The in-process table of locked ingest refs.

One daemon owns a store root (it holds the root's lock file), so excluding
writers inside this one process is enough: no cross-process file locks here.
The table is process-wide and keyed by the store's resolved root, so two
LocalStore objects on one root still exclude each other.  Thread-safe: writers
are driven from worker threads.
"""

from __future__ import annotations

import threading

from wire.errdefs import Unavailable

_guard = threading.Lock()
_held: set[tuple[str, str]] = set()


def try_lock(root: str, ref: str) -> None:
    """Take ``ref`` under ``root`` or raise Unavailable if it is held."""
    key = (root, ref)
    with _guard:
        if key in _held:
            raise Unavailable(f"ref {ref!r} locked: another writer is open")
        _held.add(key)


def unlock(root: str, ref: str) -> None:
    with _guard:
        _held.discard((root, ref))


def is_locked(root: str, ref: str) -> bool:
    with _guard:
        return (root, ref) in _held


# Serialises "is the blob there? then rename into place" across writers, so two
# commits of one digest cannot both think they created it.
commit_guard = threading.Lock()
