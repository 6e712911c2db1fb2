"""Perform and undo Mounts.  Blocking: async callers use trio.to_thread."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator

from wire.errdefs import InvalidArgument

from .mountinfo import mounts_under
from .options import MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT, parse_options
from .syscall import SyscallError, sys_mount, sys_umount2, typed_error
from .types import Mount

# A bind mount ignores these on the first call; a remount applies them.
_BIND_REMOUNT_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC

UNMOUNT_BUSY_RETRIES = 50
UNMOUNT_BUSY_PAUSE = 0.05  # seconds between retries of a busy unmount


def _mount_point(root: str, sub: str) -> str:
    if not sub:
        return root
    parts = [p for p in sub.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"mount target {sub!r}: must stay below {root!r}")
    return os.path.join(root, *parts)


def mount(m: Mount, target: str) -> None:
    """Mount one ``m`` on ``target`` (its ``m.target`` is ignored here)."""
    opts = parse_options(m.options)
    what = f"mount {m.type} {m.source!r} on {target!r}"
    try:
        sys_mount(m.source, target, m.type, opts.flags, opts.data)
        if opts.propagation:
            sys_mount(None, target, None, opts.propagation, None)
        remount_needed = opts.flags & _BIND_REMOUNT_FLAGS
        if opts.flags & MS_BIND and remount_needed and not opts.flags & MS_REMOUNT:
            try:
                sys_mount(None, target, None, opts.flags | MS_REMOUNT, None)
            except SyscallError:
                _umount_quietly(target)
                raise
    except SyscallError as e:
        raise typed_error(e.errno, what) from None


def mount_all(mounts: Iterable[Mount], target: str) -> None:
    """Mount each of ``mounts`` in order at ``target``/``m.target``.

    On failure the mounts made so far are undone, innermost first, and the
    typed error of the failing call is raised.
    """
    done: list[str] = []
    try:
        for m in mounts:
            point = _mount_point(target, m.target)
            mount(m, point)
            done.append(point)
    except BaseException:
        for point in reversed(done):
            _umount_quietly(point)
        raise


def _umount_quietly(target: str) -> None:
    try:
        sys_umount2(target, MNT_DETACH)
    except SyscallError:
        pass


def unmount(target: str, flags: int = 0) -> None:
    """Unmount the top mount at ``target``.

    ``flags`` are umount2(2) flags; pass ``MNT_DETACH`` for a lazy unmount.
    A busy target is retried for up to UNMOUNT_BUSY_RETRIES × UNMOUNT_BUSY_PAUSE.
    Raises InvalidArgument (not a mount point), NotFound, FailedPrecondition
    (still busy), PermissionDenied, naming the target.
    """
    for attempt in range(UNMOUNT_BUSY_RETRIES):
        try:
            sys_umount2(target, flags)
            return
        except SyscallError as e:
            if e.errno == errno.EBUSY and attempt + 1 < UNMOUNT_BUSY_RETRIES:
                time.sleep(UNMOUNT_BUSY_PAUSE)
                continue
            raise typed_error(e.errno, f"unmount {target!r}") from None


def unmount_all(target: str, flags: int = 0) -> None:
    """Unmount everything at or below ``target``, innermost and newest first.

    A target that is not (or no longer) mounted, or does not exist, is fine.
    """
    root = os.path.realpath(target)
    points = mounts_under(root)
    points.sort(key=lambda p: (p.mountpoint.count("/"), p.mount_id), reverse=True)
    for point in points:
        _unmount_tolerant(point.mountpoint, flags)
    # Mounts the listing could not show (e.g. made meanwhile) at the root itself.
    while _unmount_tolerant(root, flags):
        pass


def _unmount_tolerant(target: str, flags: int) -> bool:
    """True when something was unmounted, False when nothing was mounted."""
    try:
        unmount(target, flags)
        return True
    except Exception as e:  # typed errors carry the errno
        if getattr(e, "errno", None) in (errno.EINVAL, errno.ENOENT):
            return False
        raise


@contextlib.contextmanager
def temp_mount(mounts: Iterable[Mount], *, parent_dir: str | None = None) -> Iterator[str]:
    """Mount ``mounts`` on a fresh temporary directory and yield its path.

    On exit everything below it is unmounted (lazily if a plain unmount fails)
    and the directory removed, whatever happened inside.
    """
    root = tempfile.mkdtemp(prefix="dockyard-mount-", dir=parent_dir)
    try:
        mount_all(mounts, root)
        yield root
    finally:
        try:
            unmount_all(root)
        except Exception:
            unmount_all(root, MNT_DETACH)
            raise
        finally:
            if not mounts_under(os.path.realpath(root)):
                shutil.rmtree(root, ignore_errors=True)
