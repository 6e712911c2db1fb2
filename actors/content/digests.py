"""Digest helpers for the store: the hash that produces them, blob file names.

Digest syntax (``<alg>:<lowercase hex>`` of the exact length) is checked by
``wire.identifiers`` and nowhere else; a digest names a file under ``blobs/``,
so anything malformed is InvalidArgument and can never name a path outside it.
"""

from __future__ import annotations

import hashlib

from wire.errdefs import InvalidArgument
from wire.identifiers import parse_digest, validate_digest

CANONICAL = "sha256"
ALGORITHMS = ("sha256", "sha384", "sha512")

__all__ = [
    "ALGORITHMS", "CANONICAL", "digest_of", "is_blob_name", "new_hasher",
    "parse_digest", "validate_digest",
]


def is_blob_name(algorithm: str, name: str) -> bool:
    """True if ``blobs/<algorithm>/<name>`` is a well-formed blob file name."""
    try:
        parse_digest(f"{algorithm}:{name}")
    except InvalidArgument:
        return False
    return True


def new_hasher(algorithm: str = CANONICAL):
    """A fresh hashlib object for ``algorithm``."""
    if algorithm not in ALGORITHMS:
        raise InvalidArgument(f"digest algorithm {algorithm!r}: unsupported")
    return hashlib.new(algorithm)


def digest_of(hasher) -> str:
    """The digest string of a hashlib object's current state."""
    return f"{hasher.name}:{hasher.hexdigest()}"
