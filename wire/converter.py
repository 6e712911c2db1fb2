"""The one cattrs converter: every message type crosses a process boundary through here.

Messages are attrs classes (``@attrs.frozen(kw_only=True)``).  ``structure``
turns a decoded msgpack map into the class, rejecting unknown or ill-typed
fields with ``InvalidArgument`` that names the message and field;
``unstructure`` turns it back into plain maps, lists, str, int and bytes.
Timestamps are int nanoseconds everywhere, so no datetime hooks are needed.
"""

from __future__ import annotations

from typing import Any, TypeVar

import cattrs
import msgpack
from cattrs.preconf.msgpack import make_converter

from . import errdefs

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=True, prefer_attrib_converters=True)


def _strict(kind: type, name: str):
    def hook(value: Any, _cls: Any) -> Any:
        if type(value) is not kind:
            if kind is float and type(value) is int:
                return float(value)
            raise TypeError(f"expected {name}, got {type(value).__name__}")
        return value

    return hook


# msgpack already gives the right Python types; coercing "1" to 1 would hide client bugs.
converter.register_structure_hook(str, _strict(str, "string"))
converter.register_structure_hook(int, _strict(int, "integer"))
converter.register_structure_hook(bool, _strict(bool, "boolean"))
converter.register_structure_hook(float, _strict(float, "number"))
converter.register_structure_hook(bytes, _strict(bytes, "bytes"))


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from wire data or raise InvalidArgument naming what is wrong."""
    if data is None:
        data = {}
    try:
        return converter.structure(data, cls)
    except errdefs.DockyardError:
        raise
    except cattrs.BaseValidationError as exc:
        details = "; ".join(_describe(exc))
        raise errdefs.InvalidArgument(f"invalid {cls.__name__}: {details}") from None
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise errdefs.InvalidArgument(f"invalid {cls.__name__}: {exc}") from None


def unstructure(obj: Any) -> Any:
    return converter.unstructure(obj)


def _describe(exc: BaseException) -> list[str]:
    try:
        notes = cattrs.transform_error(exc)
    except Exception:  # pragma: no cover - defensive: never mask the real error
        return [str(exc)]
    return notes or [str(exc)]


def dumps(obj: Any) -> bytes:
    """Message → msgpack bytes (what any process boundary carries)."""
    return msgpack.packb(unstructure(obj), use_bin_type=True)


def loads(data: bytes, cls: type[T]) -> T:
    return structure(msgpack.unpackb(data, raw=False, strict_map_key=False), cls)
