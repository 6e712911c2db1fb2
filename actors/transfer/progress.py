"""Progress of one pull or push: phase-aware steps, published and streamed.

Every step is a ``TransferProgress`` (event word, name, parents, progress,
total).  Names are containerd's ingest refs (``layer-sha256:…``) for blobs and
the image reference for the transfer itself; ``parents`` holds the reference,
so a consumer watching ``/transfer/progress`` can tell concurrent pulls apart.

Two audiences:
- the event exchange (``/transfer/progress`` in the transfer's namespace):
  every phase change, byte counts at most every ``byte_interval`` seconds per name;
- the caller's RPC stream: every phase change in order, with byte counts
  coalesced (an unsent count of a name is replaced by the newer one), sent
  by one pump task, so a slow reader never slows a download: it sees fewer
  byte updates, never a missing or reordered phase.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

import attrs
import trio

from wire import errdefs
from wire.events import TOPIC_TRANSFER_PROGRESS, TransferProgress

from .tasks import open_nursery

# containerd's progress words, and ours for the transfer as a whole.
RESOLVING = "resolving"
RESOLVED = "resolved"
WAITING = "waiting"  # queued for a download slot, or another pull is fetching this blob
DOWNLOADING = "downloading"
UPLOADING = "uploading"
EXISTS = "already exists"
MOUNTED = "mounted"  # push: cross-repository mount, no bytes sent
COMPLETE = "complete"
EXTRACTING = "extracting"
EXTRACTED = "extracted"
SAVED = "saved"
DONE = "done"

BYTE_INTERVAL = 0.25  # seconds between published byte updates of one name


Publish = Callable[[str, str, Any], None]
Send = Callable[[Any], Awaitable[None]]


@attrs.define(eq=False)
class Progress:
    """The progress of one transfer.  ``step`` for phase changes, ``bytes`` for counts."""

    namespace: str
    publish: Publish | None
    parents: list[str] = attrs.Factory(list)
    byte_interval: float = BYTE_INTERVAL
    _latest: dict[str, TransferProgress] = attrs.Factory(dict)
    _pending: list[TransferProgress] = attrs.Factory(list)  # not yet sent, in order
    _pending_bytes: dict[str, int] = attrs.Factory(dict)  # name → index of its unsent byte count
    _wake: trio.Event = attrs.Factory(trio.Event)
    _published_at: dict[str, float] = attrs.Factory(dict)
    _closed: bool = False
    steps: int = 0  # statistics: phase changes so far

    def step(self, event: str, name: str, progress: int = 0, total: int = 0) -> None:
        """A phase change of ``name``: always published and sent."""
        self.steps += 1
        self._record(TransferProgress(event=event, name=name, parents=list(self.parents),
                                      progress=progress, total=total), force=True)

    def bytes(self, event: str, name: str, progress: int, total: int) -> None:
        """A byte count of ``name``: published at most every ``byte_interval`` seconds."""
        self._record(TransferProgress(event=event, name=name, parents=list(self.parents),
                                      progress=progress, total=total), force=False)

    def latest(self) -> dict[str, TransferProgress]:
        return dict(self._latest)

    def statistics(self) -> dict[str, int]:
        return {"names": len(self._latest), "steps": self.steps, "unsent": len(self._pending)}

    def _record(self, item: TransferProgress, *, force: bool) -> None:
        self._latest[item.name] = item
        slot = self._pending_bytes.pop(item.name, None)
        if force or slot is None:
            self._pending.append(item)
            if not force:
                self._pending_bytes[item.name] = len(self._pending) - 1
        else:
            self._pending[slot] = item
            self._pending_bytes[item.name] = slot
        self._wake.set()
        if self.publish is None:
            return
        now = trio.current_time()
        if force or now - self._published_at.get(item.name, -1e9) >= self.byte_interval:
            self._published_at[item.name] = now
            self.publish(self.namespace, TOPIC_TRANSFER_PROGRESS, item)

    async def _pump(self, send: Send) -> None:
        """Send what changed until closed, then flush; a gone caller stops the sending only."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            items, self._pending, self._pending_bytes = self._pending, [], {}
            for item in items:
                try:
                    await send(item)
                except (errdefs.DockyardError, trio.BrokenResourceError, trio.ClosedResourceError):
                    return
            if self._closed and not self._pending:
                return


@contextlib.asynccontextmanager
async def open_progress(namespace: str, publish: Publish | None, send: Send | None = None, *,
                        parents: list[str] | None = None) -> AsyncIterator[Progress]:
    """A Progress whose steps go to ``publish`` and, coalesced, to ``send``.

    On exit the states not yet sent are flushed (bounded by the caller's
    deadline: the send is the caller's own stream).
    """
    progress = Progress(namespace=namespace, publish=publish, parents=list(parents or []))
    async with open_nursery() as nursery:
        if send is not None:
            nursery.start_soon(progress._pump, send)
        try:
            yield progress
        finally:
            progress._closed = True
            progress._wake.set()
