"""The daemon-wide table of blob downloads in flight, so one blob is fetched once.

The first pull that needs a digest leads: it downloads and commits the blob.
Pulls that need it meanwhile wait for the leader (watching its byte count for
their own progress), then take the ordinary path again, which now finds the
blob already stored (same namespace) or shares the stored bytes (another
namespace).  A leader that fails wakes the waiters too; the next one leads.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import attrs
import trio


@attrs.define(eq=False)
class Download:
    """One blob being fetched by a leader."""

    digest: str
    total: int
    received: int = 0
    waiters: int = 0
    finished: trio.Event = attrs.Factory(trio.Event)


@attrs.define(eq=False)
class InFlight:
    _table: dict[str, Download] = attrs.Factory(dict)
    shared: int = 0  # statistics: waits that another pull's download served

    def current(self, digest: str) -> Download | None:
        return self._table.get(digest)

    @contextlib.contextmanager
    def lead(self, digest: str, total: int) -> Iterator[Download]:
        """Register a download of ``digest``; the caller checked ``current`` is None (no await between)."""
        if digest in self._table:
            raise RuntimeError(f"download of {digest} already has a leader")
        download = Download(digest=digest, total=total)
        self._table[digest] = download
        try:
            yield download
        finally:
            del self._table[digest]
            download.finished.set()

    def statistics(self) -> dict[str, int]:
        return {"in_flight": len(self._table), "waiting": sum(d.waiters for d in self._table.values()),
                "shared": self.shared}
