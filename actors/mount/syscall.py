"""mount(2) and umount2(2) through ctypes; errno becomes a typed error."""

from __future__ import annotations

import ctypes
import errno
import os

from actors.libc import libc as _libc
from wire.errdefs import (
    DockyardError,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    NotImplemented_,
    PermissionDenied,
)

_libc.mount.argtypes = (
    ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p,
)
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.umount2.restype = ctypes.c_int

_ERRNO_KIND: dict[int, type[DockyardError]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: NotFound,
    errno.EPERM: PermissionDenied,
    errno.EACCES: PermissionDenied,
    errno.EINVAL: InvalidArgument,
    errno.EBUSY: FailedPrecondition,
    errno.ENODEV: NotImplemented_,  # filesystem type unknown to the kernel
}


class SyscallError(OSError):
    """Raw failure of one call, kept for callers that branch on errno."""


def typed_error(err: int, what: str) -> DockyardError:
    """``what`` names the operation and target, e.g. ``mount overlay on '/x'``."""
    cls = _ERRNO_KIND.get(err, Internal)
    exc = cls(f"{what}: {os.strerror(err)}")
    exc.errno = err  # type: ignore[attr-defined]
    return exc


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def sys_mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """Raise ``SyscallError`` with errno set on failure."""
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data or None)) != 0:
        err = ctypes.get_errno()
        raise SyscallError(err, os.strerror(err), target)


def sys_umount2(target: str, flags: int) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        err = ctypes.get_errno()
        raise SyscallError(err, os.strerror(err), target)
