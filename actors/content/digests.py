"""Content digests: strict parsing and the hash that produces them.

A digest is ``<algorithm>:<lowercase hex>`` with the exact hex length of its
algorithm.  Parsing is strict because a digest names a file under ``blobs/``:
anything that is not exactly that shape is rejected with InvalidArgument, so no
digest can ever name a path outside the store.
"""

from __future__ import annotations

import hashlib
import re

import attrs

from wire.errdefs import InvalidArgument

CANONICAL = "sha256"

# algorithm -> hex length; the only algorithms a blob may be stored under.
HEX_LENGTHS: dict[str, int] = {"sha256": 64, "sha384": 96, "sha512": 128}

_HEX = re.compile(r"[0-9a-f]+")


@attrs.frozen(kw_only=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(value: object) -> Digest:
    """Parse ``value`` strictly; InvalidArgument for anything malformed."""
    if not isinstance(value, str):
        raise InvalidArgument(f"digest {value!r}: not a string")
    algorithm, sep, hexpart = value.partition(":")
    if not sep:
        raise InvalidArgument(f"digest {value!r}: missing algorithm")
    length = HEX_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidArgument(f"digest {value!r}: unsupported algorithm")
    if len(hexpart) != length or _HEX.fullmatch(hexpart) is None:
        raise InvalidArgument(
            f"digest {value!r}: want {length} lowercase hex characters"
        )
    return Digest(algorithm=algorithm, hex=hexpart)


def is_hex_name(algorithm: str, name: str) -> bool:
    """True if ``name`` is a well-formed blob file name for ``algorithm``."""
    return len(name) == HEX_LENGTHS.get(algorithm, -1) and _HEX.fullmatch(name) is not None


def new_hasher(algorithm: str = CANONICAL):
    """A fresh hashlib object for ``algorithm`` (validated by parse_digest)."""
    if algorithm not in HEX_LENGTHS:
        raise InvalidArgument(f"digest algorithm {algorithm!r}: unsupported")
    return hashlib.new(algorithm)


def digest_of(hasher) -> str:
    """The digest string of a hashlib object's current state."""
    return f"{hasher.name}:{hasher.hexdigest()}"
