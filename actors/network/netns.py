"""Network namespaces pinned as files (bind mounts of nsfs), made with plain system calls.

``create(path)`` makes a fresh namespace, pins it at ``path`` and brings its
loopback up; ``remove(path)`` unpins it.  The directory is made a shared bind
mount of itself (as ``ip netns`` does); when the last namespace in it is
removed that mount goes too, so nothing is left mounted.  Blocking: call in a
worker thread.

The namespace is made in a short-lived thread of its own: ``unshare(CLONE_NEWNET)``
moves only the calling thread, which pins the namespace, sets loopback up from
inside it and then ends, so no thread ever goes back to work in the wrong
namespace (a Trio worker thread would be reused).  No netlink library: loopback
goes up through one ``SIOCSIFFLAGS`` ioctl on a socket of the new namespace,
which keeps pyroute2 (~10 MiB resident) out of the daemon.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

from actors.libc import libc as _libc
from actors.mount.options import MNT_DETACH, MS_BIND, MS_REC, MS_SHARED
from actors.mount.syscall import SyscallError, sys_mount, sys_umount2, typed_error
from wire import errdefs

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")  # struct ifreq: name, then ifr_flags in the 24-byte union

_libc.unshare.argtypes = (ctypes.c_int,)
_libc.unshare.restype = ctypes.c_int

# Sharing the directory and deciding it is empty must not interleave: two creates could
# stack two bind mounts of it, or a remove could unmount it under a create.
_directory_lock = threading.Lock()


def create(path: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o711, exist_ok=True)
    with _directory_lock:
        if os.path.exists(path):
            raise errdefs.AlreadyExists(f"netns {path}: already exists")
        try:
            _share(directory)
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
        except FileExistsError:
            raise errdefs.AlreadyExists(f"netns {path}: already exists") from None
        except (SyscallError, OSError) as exc:
            raise errdefs.Internal(f"netns {path}: create failed: {exc}") from None
    failure: list[BaseException] = []
    worker = threading.Thread(target=_enter_and_pin, args=(path, failure), name="netns-create")
    try:
        worker.start()
    except RuntimeError as exc:  # no thread to be had: nothing was pinned
        failure.append(exc)
    else:
        worker.join()
    if failure:
        remove(path)
        exc = failure[0]
        if isinstance(exc, errdefs.DockyardError):
            raise exc
        raise errdefs.Internal(f"netns {path}: create failed: {exc}")


def _share(directory: str) -> None:
    """Make ``directory`` a shared mount, bind-mounting it on itself first if it is not a mount."""
    try:
        sys_mount(None, directory, None, MS_SHARED | MS_REC, None)
    except SyscallError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise
        sys_mount(directory, directory, None, MS_BIND | MS_REC, None)
        sys_mount(None, directory, None, MS_SHARED | MS_REC, None)


def _enter_and_pin(path: str, failure: list) -> None:
    """Runs in a thread that ends right after: it is left inside the new namespace."""
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise typed_error(err, f"netns {path}: unshare(CLONE_NEWNET)")
        try:
            sys_mount("/proc/thread-self/ns/net", path, None, MS_BIND, None)
        except SyscallError as exc:
            raise typed_error(exc.errno, f"netns {path}: pin") from None
        _loopback_up()
    except BaseException as exc:  # reported to the caller's thread
        failure.append(exc)


def _loopback_up() -> None:
    """Set IFF_UP on ``lo`` of the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        request = _IFREQ.pack(b"lo", 0)
        name, flags = _IFREQ.unpack(fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, request))
        if not flags & IFF_UP:
            fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, _IFREQ.pack(name, flags | IFF_UP))


def remove(path: str) -> None:
    """Unpin ``path`` (fine when it is already gone, or was never pinned)."""
    _unmount_tolerant(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise typed_error(exc.errno, f"netns {path}: remove") from None
    directory = os.path.dirname(path)
    with _directory_lock:
        try:
            empty = not os.listdir(directory)
        except FileNotFoundError:
            return
        if empty:
            _unmount_tolerant(directory)


def _unmount_tolerant(target: str) -> None:
    """Lazily unmount ``target``; not a mount point (EINVAL) or gone (ENOENT) is fine."""
    try:
        sys_umount2(target, MNT_DETACH)
    except SyscallError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise typed_error(exc.errno, f"netns unmount {target!r}") from None


def exists(path: str) -> bool:
    return os.path.exists(path)
