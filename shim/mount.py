"""Rootfs mounts for the bundle: mount(2)/umount2(2) through ctypes.

``actors.mount`` does the same for the daemon but pulls attrs in; the shim keeps
its own few lines so its import graph stays small.  Only what a rootfs needs:
bind/rbind and overlay-style data options, flags from fstab words.
"""

from __future__ import annotations

import ctypes
import errno
import os

from wire import errdefs

from .libc import libc as _lib

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC = 0x20, 0x1000, 0x4000
MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x40000, 0x80000, 0x100000
MNT_DETACH = 0x2

# fstab word -> (clears the flag?, flag)
_FLAGS = {
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
    "defaults": (False, 0),
}
_PROPAGATION = {"private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "slave": MS_SLAVE,
                "rslave": MS_SLAVE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC}
_ERRNO = {errno.ENOENT: errdefs.NotFound, errno.ENOTDIR: errdefs.NotFound, errno.EPERM: errdefs.PermissionDenied,
          errno.EACCES: errdefs.PermissionDenied, errno.EINVAL: errdefs.InvalidArgument,
          errno.EBUSY: errdefs.FailedPrecondition, errno.ENODEV: errdefs.NotImplemented_}



def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _call(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        exc = _ERRNO.get(err, errdefs.Internal)(f"{what}: {os.strerror(err)}")
        exc.errno = err  # type: ignore[attr-defined]
        raise exc


def parse_options(options) -> tuple[int, int, str]:
    """(flags, propagation, data): unknown words go to the filesystem as data, in order."""
    flags, propagation, data = 0, 0, []
    for option in options or ():
        if option in _FLAGS:
            clear, flag = _FLAGS[option]
            flags = flags & ~flag if clear else flags | flag
        elif option in _PROPAGATION:
            propagation |= _PROPAGATION[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def mount_one(m: dict, target: str) -> None:
    """Mount one ``{type, source, target?, options}`` on ``target``."""
    flags, propagation, data = parse_options(m.get("options"))
    what = f"mount {m.get('type')} {m.get('source')!r} on {target!r}"
    lib = _lib()
    _call(lib.mount(_b(m.get("source")), _b(target), _b(m.get("type")), flags, _b(data or None)), what)
    if propagation:
        _call(lib.mount(None, _b(target), None, propagation, None), what)
    if flags & MS_BIND and flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC):
        _call(lib.mount(None, _b(target), None, flags | MS_REMOUNT, None), what)  # bind ignores them at first


def mount_rootfs(mounts: list[dict], rootfs: str) -> None:
    """Mount each of ``mounts`` in order below ``rootfs``; undo them all if one fails."""
    done: list[str] = []
    try:
        for m in mounts:
            sub = [p for p in str(m.get("target") or "").split("/") if p not in ("", ".")]
            if ".." in sub:
                raise errdefs.InvalidArgument(f"rootfs mount target {m.get('target')!r}: must stay below the rootfs")
            point = os.path.join(rootfs, *sub)
            mount_one(m, point)
            done.append(point)
    except BaseException:
        for point in reversed(done):
            _lib().umount2(_b(point), MNT_DETACH)
        raise


def mounts_under(root: str) -> list[str]:
    """Mount points at or below ``root``, from /proc/self/mountinfo, in mount order."""
    root = os.path.realpath(root)
    found = []
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh.read().split(b"\n"):
            fields = line.split(b" ")
            if len(fields) < 5:
                continue
            point = _unescape(fields[4].decode(errors="surrogateescape"))
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return found


def unmount_all(root: str) -> None:
    """Unmount everything at or below ``root``, deepest and newest first; nothing mounted is fine.

    A busy mount is detached lazily rather than left behind.
    """
    points = mounts_under(root)
    for point in sorted(enumerate(points), key=lambda ip: (ip[1].count("/"), ip[0]), reverse=True):
        _unmount(point[1])
    real = os.path.realpath(root)
    for _ in range(16):  # stacked mounts on the root itself
        if real not in mounts_under(real):
            return
        _unmount(real)


def _unmount(point: str) -> None:
    lib = _lib()
    if lib.umount2(_b(point), 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return
    if err == errno.EBUSY:
        _call(lib.umount2(_b(point), MNT_DETACH), f"unmount {point!r}")
        return
    _call(-1 if err else 0, f"unmount {point!r}")


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
