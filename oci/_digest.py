"""Digest helpers for the oci package; the syntax rule is wire.identifiers'."""

from __future__ import annotations

import hashlib

from wire.errdefs import InvalidArgument
from wire.identifiers import parse_digest

# Algorithms we can verify (the ones parse_digest accepts).
ALGORITHMS = ("sha256", "sha384", "sha512")


def check_digest(value: object, what: str) -> str:
    """Return ``value`` if it is a valid digest, else raise InvalidArgument naming ``what``."""
    try:
        parse_digest(value)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{what}: {exc.message}") from None
    return value


def is_digest(value: object) -> bool:
    try:
        parse_digest(value)
    except InvalidArgument:
        return False
    return True


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
