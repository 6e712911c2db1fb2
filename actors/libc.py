"""The C library, loaded once for the daemon's few direct system calls (mount, unshare, sync_file_range).

``CDLL(None)`` is the libc the interpreter already has mapped, so nothing is searched for
(``ctypes.util.find_library`` runs ``ldconfig`` in a subprocess: a cost on every start-up).
Each user sets ``argtypes``/``restype`` on the functions it calls.
"""

from __future__ import annotations

import ctypes

libc = ctypes.CDLL(None, use_errno=True)
