"""Path resolution that cannot leave a root directory.

Every walk starts from an fd of the root and moves one component at a time
with ``openat(dirfd, name, O_NOFOLLOW | O_DIRECTORY)``.  Symlinks are never
followed by the kernel: we read them (``readlinkat``) and splice their target
into the remaining components ourselves, with an absolute target restarting at
the root (as under chroot) and ``..`` popping our own stack of directory fds;
a relative target climbing above the root is refused.  The kernel's ``..`` is never used, so nothing — a symlink, a rename
under our feet, a crafted name — can walk us above the root: every fd we hold
was reached downward from it.  A component swapped for a symlink between our
``fstatat`` and ``openat`` makes ``O_NOFOLLOW`` fail and the walk is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from typing import Callable, Sequence

from wire.errdefs import InvalidArgument

MAX_SYMLINK_HOPS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Called for a directory the walk had to create: (real path parts, parent fd, name).
OnCreate = Callable[[tuple[str, ...], int, str], None]


def clean_name(name: str, *, what: str = "entry") -> tuple[str, ...]:
    """Split an archive member name into clean components.

    Absolute names and names whose ``..`` climbs above the root are refused:
    a layer never needs them, and refusing makes hostile archives visible.
    """
    if name.startswith("/"):
        raise InvalidArgument(f"{what} {name!r}: absolute path in layer")
    if "\x00" in name:
        raise InvalidArgument(f"{what} {name!r}: NUL in path")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise InvalidArgument(f"{what} {name!r}: path escapes the root")
            parts.pop()
        else:
            parts.append(part)
    return tuple(parts)


def open_root(root: str, *, what: str = "root") -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidArgument(f"{what} {root!r}: cannot open as a directory ({exc.strerror})") from None


def open_dir_in_root(
    root_fd: int,
    parts: Sequence[str],
    *,
    create: bool = False,
    follow: bool = True,
    on_create: OnCreate | None = None,
    name: str = "",
) -> tuple[int, tuple[str, ...]]:
    """Open the directory ``parts`` below ``root_fd``; return (fd, real parts).

    The caller owns the returned fd (a fresh one even for the root itself).
    ``follow=False`` refuses any symlink on the way instead of resolving it.
    Missing directories are made (mode 0755) when ``create`` is set, else
    FileNotFoundError propagates.  A non-directory on the way → InvalidArgument.
    """
    stack: list[int] = [os.dup(root_fd)]
    real: list[str] = []
    todo = deque(parts)
    hops = 0
    try:
        while todo:
            part = todo.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) == 1:
                    # Names are cleaned before the walk, so only a symlink
                    # target can climb above the root: refuse it.
                    raise InvalidArgument(
                        f"path {name or '/'.join(parts)!r}: symlink leads outside the root"
                    )
                os.close(stack.pop())
                real.pop()
                continue
            here = stack[-1]
            try:
                st = os.stat(part, dir_fd=here, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=here)
                if on_create is not None:
                    on_create(tuple(real + [part]), here, part)
                st = os.stat(part, dir_fd=here, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                if not follow:
                    raise InvalidArgument(f"path {name or '/'.join(parts)!r}: symlink on the way")
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise InvalidArgument(f"path {name or '/'.join(parts)!r}: too many symlinks")
                target = os.readlink(part, dir_fd=here)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    real.clear()
                todo.extendleft(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(
                    f"path {name or '/'.join(parts)!r}: {'/'.join(real + [part])!r} is not a directory"
                )
            try:
                fd = os.open(part, _DIR_FLAGS, dir_fd=here)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidArgument(
                        f"path {name or '/'.join(parts)!r}: changed while being resolved"
                    ) from None
                raise
            stack.append(fd)
            real.append(part)
        result = stack.pop()
        return result, tuple(real)
    finally:
        for fd in stack:
            os.close(fd)


def fd_path(fd: int, name: str | None = None) -> str:
    """A path naming exactly what ``fd`` (or ``name`` inside dir ``fd``) is.

    ``/proc/self/fd/N`` is the inode behind the fd itself, so calls without a
    ``dir_fd`` form (setxattr, chmod without following) stay on that inode.
    """
    base = f"/proc/self/fd/{fd}"
    return base if name is None else f"{base}/{name}"
