"""Lease value types and the rules for their ids and resources."""

from __future__ import annotations

import base64
import os
import time

import attrs

from actors.metadata import leases as lease_records
from wire import errdefs, identifiers


@attrs.frozen(kw_only=True)
class Lease:
    id: str
    created_at: int  # unix nanoseconds
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class Resource:
    """A leased object: ``type`` is content, ingests, images or snapshots/<snapshotter>."""

    id: str
    type: str


def generate_id() -> str:
    """containerd's generated lease id: ``<nanoseconds of the second>-<base64url of 3 random bytes>``."""
    return f"{time.time_ns() % 1_000_000_000}-{base64.urlsafe_b64encode(os.urandom(3)).decode()}"


def parse_resource(resource: Resource) -> Resource:
    """Check a resource as containerd does; return it with a canonical id.

    Unknown types are NotImplemented; a malformed type or id is InvalidArgument.
    """
    identifiers.validate_free_form(resource.id, "lease resource id")
    parts = resource.type.split("/")
    kind = parts[0]
    if kind in (lease_records.CONTENT, lease_records.INGESTS, lease_records.IMAGES):
        if len(parts) != 1:
            raise errdefs.InvalidArgument(f"invalid resource type {resource.type!r}")
        if kind == lease_records.CONTENT:
            try:
                return Resource(id=identifiers.validate_digest(resource.id), type=kind)
            except errdefs.InvalidArgument as exc:
                raise errdefs.InvalidArgument(f"invalid content resource id {resource.id!r}: {exc.message}") from None
        return resource
    if kind == "snapshots":
        if len(parts) != 2 or not parts[1]:
            raise errdefs.InvalidArgument(f"invalid resource type {resource.type!r}: use snapshots/<snapshotter>")
        return resource
    raise errdefs.NotImplemented_(f"resource type {resource.type!r} not supported yet")
