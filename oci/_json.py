"""Strict readers for decoded JSON values; every failure is InvalidArgument naming the field."""

from __future__ import annotations

import json
from typing import Any

from wire.errdefs import InvalidArgument


def load_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode ``data`` as one JSON object or raise InvalidArgument naming ``what``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"{what}: expected bytes, got {type(data).__name__}")
    try:
        value = json.loads(bytes(data), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidArgument(f"{what}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def dump(value: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (no spaces, key order kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def get_str(obj: dict, key: str, what: str, *, required: bool = False, default: str = "") -> str:
    if key not in obj or obj[key] is None:
        if required:
            raise InvalidArgument(f"{what}: missing {key!r}")
        return default
    value = obj[key]
    if not isinstance(value, str):
        raise InvalidArgument(f"{what}: {key!r} must be a string")
    return value


def get_int(obj: dict, key: str, what: str, *, required: bool = False) -> int | None:
    if key not in obj:
        if required:
            raise InvalidArgument(f"{what}: missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what}: {key!r} must be an integer")
    return value


def get_list(obj: dict, key: str, what: str, *, required: bool = False) -> list | None:
    if key not in obj or obj[key] is None:
        if required:
            raise InvalidArgument(f"{what}: missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, list):
        raise InvalidArgument(f"{what}: {key!r} must be an array")
    return value


def get_obj(obj: dict, key: str, what: str, *, required: bool = False) -> dict | None:
    if key not in obj or obj[key] is None:
        if required:
            raise InvalidArgument(f"{what}: missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what}: {key!r} must be an object")
    return value


def get_str_list(obj: dict, key: str, what: str) -> tuple[str, ...] | None:
    items = get_list(obj, key, what)
    if items is None:
        return None
    if not all(isinstance(item, str) for item in items):
        raise InvalidArgument(f"{what}: {key!r} must be an array of strings")
    return tuple(items)


def get_str_map(obj: dict, key: str, what: str) -> dict[str, str]:
    value = get_obj(obj, key, what)
    if value is None:
        return {}
    if not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{what}: {key!r} must map strings to strings")
    return dict(value)
