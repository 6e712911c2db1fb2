"""Container records: the value type, validation and update masks (pure, no I/O).

Rules as containerd's: the id is an identifier, ``runtime.name`` and ``spec`` are
required, a snapshot key needs a snapshotter, extension names are non-empty.
Update masks may name ``labels``, ``labels.<k>``, ``spec``, ``extensions``,
``extensions.<k>``, ``image``, ``snapshotkey``; without a mask those fields are
replaced and a changed ``snapshotter`` or ``runtime.name`` is refused.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from wire import errdefs, identifiers


@attrs.frozen(kw_only=True)
class Runtime:
    name: str = ""
    options: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class Container:
    """A container as clients send it (created_at/updated_at are set by the store)."""

    id: str
    labels: dict[str, str] = attrs.Factory(dict)
    image: str = ""
    runtime: Runtime = attrs.Factory(Runtime)
    spec: dict[str, Any] | None = None
    snapshotter: str = ""
    snapshot_key: str = ""
    extensions: dict[str, Any] = attrs.Factory(dict)
    sandbox_id: str = ""
    created_at: int = 0
    updated_at: int = 0


def to_record(c: Container) -> dict[str, Any]:
    """The JSON-able record kept in meta.db (GC reads snapshotter/snapshot_key/image/labels)."""
    return {
        "id": c.id,
        "labels": dict(c.labels),
        "image": c.image,
        "runtime": {"name": c.runtime.name, "options": c.runtime.options},
        "spec": c.spec,
        "snapshotter": c.snapshotter,
        "snapshot_key": c.snapshot_key,
        "extensions": dict(c.extensions),
        "sandbox_id": c.sandbox_id,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def dump_record(record: dict[str, Any]) -> str:
    try:
        return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise errdefs.InvalidArgument(f"container {record.get('id')!r}: record is not JSON-able: {exc}") from None


def validate(record: dict[str, Any]) -> None:
    """Check a full record as containerd's metadata store does before writing it."""
    cid = record["id"]
    identifiers.validate_identifier(cid, "container id")
    identifiers.validate_labels(record["labels"])
    if not record["runtime"]["name"]:
        raise errdefs.InvalidArgument(f"container {cid!r}: runtime name must not be empty")
    if not record["spec"]:
        raise errdefs.InvalidArgument(f"container {cid!r}: spec must not be empty")
    if record["snapshot_key"] and not record["snapshotter"]:
        raise errdefs.InvalidArgument(f"container {cid!r}: snapshot key requires a snapshotter")
    for name in record["extensions"]:
        if not name:
            raise errdefs.InvalidArgument(f"container {cid!r}: extension name must not be empty")
    if record["sandbox_id"]:
        identifiers.validate_identifier(record["sandbox_id"], f"container {cid!r}: sandbox id")


def apply_update(current: dict[str, Any], new: dict[str, Any], mask: list[str] | None) -> dict[str, Any]:
    """The record after updating ``current`` with ``new`` under ``mask``."""
    cid = current["id"]
    out = json.loads(json.dumps(current))  # deep copy of plain data
    if mask:
        for path in mask:
            if path.startswith("labels."):
                key = path[len("labels."):]
                value = new["labels"].get(key, "")
                if value:
                    out["labels"][key] = value
                else:
                    out["labels"].pop(key, None)
            elif path.startswith("extensions."):
                key = path[len("extensions."):]
                if key in new["extensions"]:
                    out["extensions"][key] = new["extensions"][key]
                else:
                    out["extensions"].pop(key, None)
            elif path == "labels":
                out["labels"] = dict(new["labels"])
            elif path == "extensions":
                out["extensions"] = dict(new["extensions"])
            elif path == "spec":
                out["spec"] = new["spec"]
            elif path == "image":
                out["image"] = new["image"]
            elif path in ("snapshotkey", "snapshot_key"):
                out["snapshot_key"] = new["snapshot_key"]
            else:
                raise errdefs.InvalidArgument(f"container {cid!r}: cannot update {path!r} field")
        return out
    if new["snapshotter"] != current["snapshotter"]:
        raise errdefs.InvalidArgument(f"container {cid!r}: snapshotter field is immutable")
    if new["runtime"]["name"] != current["runtime"]["name"]:
        raise errdefs.InvalidArgument(f"container {cid!r}: runtime.name field is immutable")
    out["labels"] = dict(new["labels"])
    out["extensions"] = dict(new["extensions"])
    out["spec"] = new["spec"]
    out["image"] = new["image"]
    out["snapshot_key"] = new["snapshot_key"]
    return out
