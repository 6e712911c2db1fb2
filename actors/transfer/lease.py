"""A temporary lease for one transfer, as containerd's client makes one (random id, 24 h).

When the caller sent a lease, everything joins that one instead.  The lease is
made and deleted through the leases manager (the owner of the leases table);
deleting it marks meta.db dirty so GC drops what nothing else holds.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any, AsyncIterator

import trio

from actors.timeouts import register
from oci.identity import LABEL_GC_EXPIRE
from wire import errdefs

TEMPORARY_LEASE_SECONDS = 24 * 3600
LEASE_CLEANUP = register("io.dockyard.timeout.transfer.lease-cleanup", 10.0)


def expiry_label(seconds: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.asynccontextmanager
async def transfer_lease(leases: Any, ns: str, lease: str | None, *,
                         cleanup_timeout: float = 10.0) -> AsyncIterator[str]:
    """Yield ``lease`` if given, else a temporary lease deleted when the block ends."""
    if lease:
        yield lease
        return
    if leases is None:
        raise errdefs.FailedPrecondition("transfer: no lease manager is loaded to hold the content")
    made = await leases.create(ns, labels={LABEL_GC_EXPIRE: expiry_label(TEMPORARY_LEASE_SECONDS)})
    try:
        yield made.id
    finally:
        with trio.move_on_after(cleanup_timeout) as scope:
            scope.shield = True
            try:
                await leases.delete(ns, made.id)
            except errdefs.NotFound:
                pass
