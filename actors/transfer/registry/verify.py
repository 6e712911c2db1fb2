"""Stream a fetched blob into a synchronous sink while hashing it, and verify it.

Hashing and writing are blocking work, so chunks are gathered into batches of
about ``BATCH_SIZE`` bytes and handed to a thread together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import trio

from oci.descriptor import Descriptor
from wire import errdefs

from .fetcher import Fetcher

BATCH_SIZE = 1024 * 1024


def new_hasher(digest: str) -> Any:
    algorithm = digest.partition(":")[0]
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise errdefs.NotImplemented_(f"digest {digest}: unsupported algorithm {algorithm!r}")
    return hashlib.new(algorithm)


async def fetch_into(
    fetcher: Fetcher,
    desc: Descriptor,
    write: Callable[[bytes], object],
    *,
    offset: int = 0,
    hasher: Any = None,
) -> int:
    """Fetch ``desc`` from ``offset`` into ``write`` (a sync callable) and verify it.

    ``hasher`` must already hold the first ``offset`` bytes when resuming.
    Returns the number of bytes written.  Raises FailedPrecondition when the
    blob is longer or shorter than ``desc.size`` and DataLoss when its digest
    differs from ``desc.digest``; the sink then holds bytes the caller must drop.
    """
    if hasher is None:
        if offset:
            raise errdefs.InvalidArgument(
                f"blob {desc.digest}: resuming at {offset} needs the hash state of the first bytes")
        hasher = new_hasher(desc.digest)
    expected = desc.size - offset
    written = 0

    def consume(batch: list[bytes]) -> None:
        for chunk in batch:
            hasher.update(chunk)
            write(chunk)

    async with fetcher.fetch(desc, offset) as stream:
        batch: list[bytes] = []
        pending = 0
        async for chunk in stream:
            if written + pending + len(chunk) > expected:
                raise errdefs.FailedPrecondition(
                    f"blob {desc.digest}: registry sent more than the expected {desc.size} bytes")
            batch.append(chunk)
            pending += len(chunk)
            if pending >= BATCH_SIZE:
                await trio.to_thread.run_sync(consume, batch)
                written += pending
                batch, pending = [], 0
        if batch:
            await trio.to_thread.run_sync(consume, batch)
            written += pending
    if written != expected:
        raise errdefs.FailedPrecondition(
            f"blob {desc.digest}: got {offset + written} of {desc.size} bytes")
    actual = f"{desc.digest.partition(':')[0]}:{hasher.hexdigest()}"
    if actual != desc.digest:
        raise errdefs.DataLoss(f"blob {desc.digest}: content has digest {actual}")
    return written
