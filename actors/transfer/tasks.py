"""A nursery whose failure is the one error worth reporting, not an ExceptionGroup.

Pulls and pushes run blobs in parallel; when one fails the others are
cancelled, and the caller should see that typed error (NotFound, DataLoss, …)
rather than a group the RPC layer would turn into an internal error.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import trio

from .pipes import unwrap_group


@contextlib.asynccontextmanager
async def open_nursery() -> AsyncIterator[trio.Nursery]:
    try:
        async with trio.open_nursery() as nursery:
            yield nursery
    except BaseExceptionGroup as group:
        raise unwrap_group(group) from None
