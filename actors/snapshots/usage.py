"""Measure a directory tree's disk use the way containerd's fs.DiskUsage does."""

from __future__ import annotations

import os
import stat

from .types import Usage


def disk_usage(root: str) -> Usage:
    """Allocated bytes and inodes of ``root`` and below, each inode counted once.

    A missing ``root`` measures as empty.  Symlinks are not followed.
    """
    seen: set[tuple[int, int]] = set()
    size = 0
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident not in seen:
            seen.add(ident)
            size += st.st_blocks * 512
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(path) as entries:
                    stack.extend(e.path for e in entries)
            except FileNotFoundError:
                continue
    return Usage(size=size, inodes=len(seen))
