"""libc through ctypes, loaded once per process (a zygote loads it for all the shims it forks).

Loading makes a class per ``CDLL`` and a function object per symbol used; done
in every fork that would write some 250 KiB of pages the forks could share.
"""

from __future__ import annotations

import ctypes

SYMBOLS = ("prctl", "mount", "umount2")  # what the shim calls

_libc = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # already loaded: no find_library (it imports subprocess)
    return _libc


def preload() -> None:
    lib = libc()
    for name in SYMBOLS:
        getattr(lib, name)
