"""Per-key locks: operations naming the same snapshot key run one after another.

Operations on different keys never wait for each other.  A lock entry exists
only while someone holds or waits for it, so the table stays small.  Several
keys are always taken in sorted order, so two operations cannot deadlock.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Hashable, Iterable

import attrs
import trio

from wire.errdefs import Unavailable


@attrs.define(eq=False)
class _Entry:
    lock: trio.Lock = attrs.Factory(trio.Lock)
    users: int = 0


@attrs.define(eq=False)
class KeyLocks:
    _entries: dict[Hashable, _Entry] = attrs.Factory(dict)

    @contextlib.asynccontextmanager
    async def hold(self, keys: Iterable[Hashable], *, timeout: float, what: str) -> AsyncIterator[None]:
        """Hold every one of ``keys``; Unavailable naming ``what`` after ``timeout`` seconds."""
        ordered = sorted(set(keys))
        entries = [self._entries.setdefault(k, _Entry()) for k in ordered]
        for entry in entries:
            entry.users += 1
        held: list[_Entry] = []
        try:
            with trio.move_on_after(timeout) as scope:
                for entry in entries:
                    await entry.lock.acquire()
                    held.append(entry)
            if scope.cancelled_caught:
                raise Unavailable(f"{what}: busy, another operation on it took longer than {timeout:g}s")
            yield
        finally:
            for entry in reversed(held):
                entry.lock.release()
            for key, entry in zip(ordered, entries):
                entry.users -= 1
                if entry.users == 0:
                    self._entries.pop(key, None)

    def statistics(self) -> dict[str, int]:
        return {"keys": len(self._entries), "users": sum(e.users for e in self._entries.values())}
