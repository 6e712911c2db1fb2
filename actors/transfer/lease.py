"""A temporary lease for one transfer, as containerd's client makes one (random id, 24 h).

When the caller sent a lease, everything joins that one instead.  Deleting the
temporary lease marks meta.db dirty so GC drops what nothing else holds.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import os
import time
from typing import AsyncIterator

import trio

from actors.metadata.db import MetadataDB, dump_labels, now_ns
from oci.identity import LABEL_GC_EXPIRE

TEMPORARY_LEASE_SECONDS = 24 * 3600


def new_lease_id() -> str:
    """containerd's random lease id: ``<nanoseconds>-<base64url(3 random bytes)>``."""
    return f"{time.time_ns()}-{base64.urlsafe_b64encode(os.urandom(3)).decode()}"


def expiry_label(seconds: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.asynccontextmanager
async def transfer_lease(db: MetadataDB, ns: str, lease: str | None) -> AsyncIterator[str]:
    """Yield ``lease`` if given, else a temporary lease deleted when the block ends."""
    if lease:
        yield lease
        return
    lease_id = new_lease_id()
    labels = {LABEL_GC_EXPIRE: expiry_label(TEMPORARY_LEASE_SECONDS)}
    with db.write() as tx:
        tx.ensure_namespace(ns)
        tx.execute("INSERT INTO leases (namespace, id, labels, created_at) VALUES (?, ?, ?, ?)",
                   (ns, lease_id, dump_labels(labels), now_ns()))
    try:
        yield lease_id
    finally:
        with trio.CancelScope(shield=True):
            with db.write() as tx:
                tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ?", (ns, lease_id))
                tx.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (ns, lease_id))
                tx.mark_deleted()
