"""Directory fds kept open for one extraction, keyed by the names asked for.

A layer lists many entries per directory, and resolving each entry's parent
from the root costs an ``fstatat`` + ``openat`` per component.  ``DirCache``
keeps what ``open_dir_in_root`` answered, keyed by the cleaned name parts that
were asked for (which may pass through symlinks), with the real parts they
resolved to.  A miss whose own parent is cached resolves only the last
component from that fd, and only when it is a plain directory (``follow=False``);
a symlink or anything odd there falls back to the full walk from the root, so
symlink handling (re-rooting, ``..``) is always the walk's.

The cache describes the tree as this extraction left it.  Only removing a
directory or a symlink can make a cached name resolve differently (creating a
new name never changes what an existing directory path means), and the
extractor calls ``clear()`` after any entry that did so.  Every fd was reached
downward from the root, as before; the tree being extracted into is private to
the daemon while it is applied (an active snapshot, a temporary mount).
"""

from __future__ import annotations

import os
from typing import Sequence

import attrs

from wire.errdefs import InvalidArgument

from .saferoot import OnCreate, open_dir_in_root

MAX_OPEN = 64  # fds held at once; tar order keeps the useful ones recent


@attrs.define(eq=False)
class DirCache:
    root_fd: int
    limit: int = MAX_OPEN
    hits: int = 0
    misses: int = 0
    # asked-for parts -> (fd, real parts); most recently used last
    _open: dict[tuple[str, ...], tuple[int, tuple[str, ...]]] = attrs.field(factory=dict)

    def open(self, parts: Sequence[str], *, on_create: OnCreate | None = None,
             name: str = "") -> tuple[int, tuple[str, ...]]:
        """(fd, real parts) of directory ``parts``, made if missing (as
        ``open_dir_in_root(create=True)``).  The fd belongs to the cache: valid
        until the next ``open`` or ``clear``; never close it."""
        key = tuple(parts)
        found = self._open.pop(key, None)
        if found is None:
            self.misses += 1
            found = self._resolve(key, on_create, name)
            while len(self._open) >= self.limit:
                oldest = next(iter(self._open))
                os.close(self._open.pop(oldest)[0])
        else:
            self.hits += 1
        self._open[key] = found
        return found

    def clear(self) -> None:
        """Close every fd: the tree changed shape (a directory or symlink went away)."""
        fds = [fd for fd, _ in self._open.values()]
        self._open.clear()
        for fd in fds:
            os.close(fd)

    def statistics(self) -> dict[str, int]:
        return {"open": len(self._open), "hits": self.hits, "misses": self.misses}

    def _resolve(self, key: tuple[str, ...], on_create: OnCreate | None,
                 name: str) -> tuple[int, tuple[str, ...]]:
        above = self._open.get(key[:-1]) if key else None
        if above is not None:
            above_fd, above_real = above
            nested = None
            if on_create is not None:
                def nested(real, dir_fd, part):  # real parts are relative to the cached fd
                    on_create(above_real + real, dir_fd, part)
            try:
                fd, real = open_dir_in_root(above_fd, key[-1:], create=True, follow=False,
                                            on_create=nested, name=name)
            except InvalidArgument:
                pass  # a symlink (or not a directory): the walk from the root decides
            else:
                return fd, above_real + real
        return open_dir_in_root(self.root_fd, key, create=True, on_create=on_create, name=name)
