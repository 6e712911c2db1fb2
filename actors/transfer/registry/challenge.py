"""Parse ``WWW-Authenticate`` challenges (RFC 7235) as registries send them.

Pure and synchronous.  ``Bearer realm="https://auth.io/token",service="reg",scope="a b"``
becomes ``Challenge(scheme="bearer", params={"realm": ..., "service": ..., "scope": ...})``.
Several challenges in one header (comma separated) are all returned, in order.
"""

from __future__ import annotations

import re

import attrs

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*({_QUOTED}|{_TOKEN})\s*")
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})(?=\s|$|,)")


@attrs.frozen(kw_only=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer", ...
    params: dict[str, str] = attrs.field(factory=dict)

    def param(self, name: str) -> str:
        return self.params.get(name, "")


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one header value; malformed tails are ignored, never raised."""
    challenges: list[Challenge] = []
    pos, end = 0, len(header)
    while pos < end:
        while pos < end and header[pos] in " ,\t":
            pos += 1
        scheme = _SCHEME_RE.match(header, pos)
        if scheme is None:
            break
        pos = scheme.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM_RE.match(header, pos)
            if param is None:
                break
            params[param[1].lower()] = _unquote(param[2])
            pos = param.end()
            if pos < end and header[pos] == ",":
                pos += 1
        challenges.append(Challenge(scheme=scheme[1].lower(), params=params))
        if pos < end and header[pos] not in " ,\t":
            # A token68 credential or junk: skip to the next comma.
            comma = header.find(",", pos)
            pos = end if comma < 0 else comma + 1
    return challenges


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
