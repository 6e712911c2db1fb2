"""GC nodes: one per meta.db record that takes part in collection.

A node is ``(kind, namespace, key)``; snapshot keys are ``<snapshotter>/<key>``
as containerd's.  Containers and sandboxes are nodes too (roots, never removed)
so ``explain`` can name them in a chain.
"""

from __future__ import annotations

from typing import NamedTuple

CONTENT = "content"
SNAPSHOT = "snapshot"
IMAGE = "image"
LEASE = "lease"
INGEST = "ingest"
CONTAINER = "container"
SANDBOX = "sandbox"

KINDS = (CONTENT, SNAPSHOT, IMAGE, LEASE, INGEST, CONTAINER, SANDBOX)

#: kinds whose unreachable records a collection deletes (never containers or sandboxes)
COLLECTIBLE = (LEASE, SNAPSHOT, INGEST, CONTENT, IMAGE)


class Node(NamedTuple):
    kind: str
    namespace: str
    key: str

    def __str__(self) -> str:
        return f"{self.kind} {self.key}" if not self.namespace else f"{self.kind} {self.namespace}/{self.key}"


def snapshot_node(namespace: str, snapshotter: str, key: str) -> Node:
    return Node(SNAPSHOT, namespace, f"{snapshotter}/{key}")


def split_snapshot_key(key: str) -> tuple[str, str]:
    """``<snapshotter>/<key>`` → (snapshotter, key); the key itself may contain '/'."""
    snapshotter, sep, name = key.partition("/")
    if not sep or not snapshotter or not name:
        raise ValueError(f"snapshot gc key {key!r}: want <snapshotter>/<key>")
    return snapshotter, name
