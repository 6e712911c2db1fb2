"""Private digest checks for the oci package (``algorithm:hex``)."""

from __future__ import annotations

import hashlib
import re

from wire.errdefs import InvalidArgument

# Algorithms we can verify, with the length of their hex encoding.
HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_RE = re.compile(r"[0-9a-f]+")


def check_digest(value: object, what: str) -> str:
    """Return ``value`` if it is a valid digest, else raise InvalidArgument naming ``what``."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what}: digest must be a string, got {type(value).__name__}")
    algorithm, colon, encoded = value.partition(":")
    if not colon:
        raise InvalidArgument(f"{what}: invalid digest {value!r}: missing algorithm")
    length = HEX_LENGTH.get(algorithm)
    if length is None:
        raise InvalidArgument(f"{what}: unsupported digest algorithm in {value!r}")
    if len(encoded) != length or not _HEX_RE.fullmatch(encoded):
        raise InvalidArgument(f"{what}: invalid {algorithm} digest {value!r}")
    return value


def is_digest(value: object) -> bool:
    try:
        check_digest(value, "digest")
    except InvalidArgument:
        return False
    return True


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def new_hasher(digest: str):
    """A hashlib object for the algorithm of ``digest`` (which must be valid)."""
    return hashlib.new(digest.partition(":")[0])
