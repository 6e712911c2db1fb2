"""Validation of the names that cross dockyard's wire.

Three families, each with its own rule:

* identifiers (namespaces, container/task/exec/sandbox ids, topic components):
  containerd's grammar, 1-76 ASCII chars ``[A-Za-z0-9]+([._-][A-Za-z0-9]+)*``;
* digests (``sha256:<64 hex>``, ``sha384:<96>``, ``sha512:<128>``, lowercase):
  they become file names in the content store, so this is a security boundary;
* free-form names (image names, lease ids, snapshot keys, ingest refs):
  non-empty, at most 4096 bytes of UTF-8, no control characters at all
  (C0, DEL, C1) and nothing that is not valid Unicode text.  Free-form names
  may contain ``/`` and ``..``: never use one as a path component directly.

Every check raises ``InvalidArgument`` naming what was checked and the value,
and returns the value unchanged when it passes.  Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from wire.errdefs import InvalidArgument

IDENTIFIER_MAX_LENGTH = 76
LABEL_MAX_BYTES = 4096  # len(key) + len(value), UTF-8 bytes
FREE_FORM_MAX_BYTES = 4096

_IDENTIFIER = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"[0-9a-f]+")
# C0 controls (NUL included), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_SHOWN_CHARS = 80  # values are echoed in messages, cut to this length


def _shown(value: object) -> str:
    """The value as a message shows it: repr, cut so a huge input stays a short error."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + f"... ({len(value)} chars)"
    return repr(value)


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} {_shown(value)}: must be a string, not {type(value).__name__}")
    return value


def _utf8_length(value: str, what: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} {_shown(value)}: not valid Unicode text") from None


def validate_identifier(value: object, what: str = "identifier") -> str:
    """Check containerd's identifier grammar; return the value."""
    value = _require_str(value, what)
    if not value:
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > IDENTIFIER_MAX_LENGTH:
        raise InvalidArgument(
            f"{what} {_shown(value)}: longer than {IDENTIFIER_MAX_LENGTH} characters"
        )
    if _IDENTIFIER.fullmatch(value) is None:
        raise InvalidArgument(
            f"{what} {_shown(value)}: must match [A-Za-z0-9]+([._-][A-Za-z0-9]+)*"
        )
    return value


def validate_namespace(value: object) -> str:
    return validate_identifier(value, "namespace")


def validate_topic(value: object) -> str:
    """An event topic: ``/`` then one or more identifiers separated by ``/``."""
    topic = _require_str(value, "topic")
    if not topic:
        raise InvalidArgument("topic must not be empty")
    if topic[0] != "/":
        raise InvalidArgument(f"topic {_shown(topic)}: must start with '/'")
    if len(topic) == 1:
        raise InvalidArgument(f"topic {_shown(topic)}: must have at least one component")
    for component in topic[1:].split("/"):
        validate_identifier(component, f"topic {_shown(topic)} component")
    return topic


def parse_digest(value: object) -> tuple[str, str]:
    """Split ``<algorithm>:<hex>`` into its parts after checking both strictly."""
    digest = _require_str(value, "digest")
    algorithm, sep, encoded = digest.partition(":")
    if not sep:
        raise InvalidArgument(f"digest {_shown(digest)}: must be <algorithm>:<hex>")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidArgument(
            f"digest {_shown(digest)}: unsupported algorithm {_shown(algorithm)}"
            f" (supported: {', '.join(_DIGEST_HEX_LENGTH)})"
        )
    if len(encoded) != expected or _LOWER_HEX.fullmatch(encoded) is None:
        raise InvalidArgument(
            f"digest {_shown(digest)}: {algorithm} needs exactly {expected} lowercase hex characters"
        )
    return algorithm, encoded


def validate_digest(value: object) -> str:
    algorithm, encoded = parse_digest(value)
    return f"{algorithm}:{encoded}"


def validate_labels(labels: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """containerd's label rule: str keys (non-empty) and values, key+value <= 4096 bytes."""
    if labels is None:
        return None
    if not isinstance(labels, Mapping):
        raise InvalidArgument(f"labels: must be a mapping, not {type(labels).__name__}")
    for key, val in labels.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(f"label key {_shown(key)}: must be a non-empty string")
        if not isinstance(val, str):
            raise InvalidArgument(
                f"label {_shown(key)}: value must be a string, not {type(val).__name__}"
            )
        size = _utf8_length(key, "label key") + _utf8_length(val, f"label {_shown(key)} value")
        if size > LABEL_MAX_BYTES:
            raise InvalidArgument(
                f"label {_shown(key)}: key and value are {size} bytes,"
                f" more than the maximum of {LABEL_MAX_BYTES}"
            )
    return labels


def validate_free_form(value: object, what: str) -> str:
    """A free-form name: non-empty, <= 4096 UTF-8 bytes, no control characters."""
    value = _require_str(value, what)
    if not value:
        raise InvalidArgument(f"{what} must not be empty")
    size = _utf8_length(value, what)
    if size > FREE_FORM_MAX_BYTES:
        raise InvalidArgument(
            f"{what} {_shown(value)}: {size} bytes, more than the maximum of {FREE_FORM_MAX_BYTES}"
        )
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidArgument(
            f"{what} {_shown(value)}: control character {bad.group()!r} at position {bad.start()}"
        )
    return value
