"""Lease bookkeeping inside write transactions (shared by every store that creates things).

A request's lease (metadata ``lease``) holds everything the request creates:
content blobs, ingests, images and snapshots join it in the same transaction
that creates them.  Resource types are containerd's: ``content`` (a digest),
``ingests`` (a ref), ``images`` (a name), ``snapshots/<snapshotter>`` (a key).
"""

from __future__ import annotations

from wire import errdefs

from .db import WriteTx

CONTENT = "content"
INGESTS = "ingests"
IMAGES = "images"


def snapshots(snapshotter: str) -> str:
    return f"snapshots/{snapshotter}"


def require_lease(tx: WriteTx, namespace: str, lease: str) -> None:
    row = tx.execute("SELECT 1 FROM leases WHERE namespace = ? AND id = ?", (namespace, lease)).fetchone()
    if row is None:
        raise errdefs.NotFound(f"lease {lease!r}: not found")


def add_to_lease(tx: WriteTx, namespace: str, lease: str | None, rtype: str, rid: str) -> None:
    """Add a resource to ``lease`` (no-op without a lease); an unknown lease is NotFound."""
    if not lease:
        return
    require_lease(tx, namespace, lease)
    tx.execute("INSERT OR IGNORE INTO lease_resources (namespace, lease, type, id) VALUES (?, ?, ?, ?)",
               (namespace, lease, rtype, rid))


def remove_from_leases(tx: WriteTx, namespace: str, rtype: str, rid: str) -> None:
    """Forget a resource in every lease of ``namespace`` (when the resource itself is gone)."""
    tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND type = ? AND id = ?", (namespace, rtype, rid))
