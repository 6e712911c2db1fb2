"""Image references: parse, normalize and print them the way Docker and containerd do.

Pure and synchronous (the CLI imports it).  The grammar is the distribution
project's reference grammar:

    reference := name [":" tag] ["@" digest]
    name      := [domain "/"] path
    domain    := host [":" port]          host: DNS name, IPv4, or [IPv6]
    path      := component ("/" component)*   component: [a-z0-9]+ joined by "." "_" "__" "-"+
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex

Normalization: the first path element is a domain only if it contains "." or
":", is "localhost", or has an upper-case letter; otherwise the domain is
``docker.io``, and a single-element docker.io path gets ``library/``.  A name
with neither tag nor digest gets ``:latest``.
"""

from __future__ import annotations

import re

import attrs

from wire.errdefs import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_ALGORITHM = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*"
_DIGEST = rf"{_ALGORITHM}:[0-9a-fA-F]{{32,}}"

_DOMAIN_RE = re.compile(_DOMAIN)
_REMAINDER_RE = re.compile(rf"(?P<path>{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_TAG_RE = re.compile(_TAG)
_HEX64_RE = re.compile(r"[a-f0-9]{64}")

# Digest algorithms we can verify, with the length of their hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


@attrs.frozen(kw_only=True)
class Reference:
    """A normalized image reference; build it with :func:`parse`."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository name with its domain: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def locator(self) -> str:
        """containerd's locator: where the repository lives (``domain/path``)."""
        return self.name

    @property
    def object(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return self.digest or self.tag

    @property
    def familiar(self) -> str:
        """The short form people type: ``busybox:latest``, ``user/img@sha256:...``."""
        return _with_object(familiar_name(self.domain, self.path), self.tag, self.digest)

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.fullmatch(tag):
            raise InvalidArgument(f"tag {tag!r}: invalid tag format")
        return attrs.evolve(self, tag=tag, digest="")

    def with_digest(self, digest: str) -> Reference:
        _check_digest(digest, str(self))
        return attrs.evolve(self, digest=digest)

    def __str__(self) -> str:
        return _with_object(self.name, self.tag, self.digest)


def _with_object(name: str, tag: str, digest: str) -> str:
    text = name
    if tag:
        text += ":" + tag
    if digest:
        text += "@" + digest
    return text


def split_domain(name: str) -> tuple[str, str]:
    """Split a (possibly familiar) name into its domain and the rest, Docker's way."""
    first, slash, rest = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder.split("@", 1)[0]:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def familiar_name(domain: str, path: str) -> str:
    """Drop ``docker.io/`` and ``library/`` where Docker would."""
    if domain != DEFAULT_DOMAIN:
        return f"{domain}/{path}"
    if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX):]:
        return path[len(OFFICIAL_REPO_PREFIX):]
    return path


def parse(text: str, *, default_tag: str | None = DEFAULT_TAG) -> Reference:
    """Parse and normalize ``text``; a bare name gets ``default_tag`` (None: leave it bare).

    Raises InvalidArgument naming the reference when it does not follow the grammar.
    """
    if not isinstance(text, str) or not text:
        raise InvalidArgument(f"reference {text!r}: invalid reference format: empty")
    if _HEX64_RE.fullmatch(text):
        raise InvalidArgument(
            f"reference {text!r}: invalid repository name, cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = split_domain(text)
    remote_name = remainder.split("@", 1)[0].split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidArgument(f"reference {text!r}: invalid reference format: repository name must be lowercase")
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidArgument(f"reference {text!r}: invalid reference format: bad domain {domain!r}")
    match = _REMAINDER_RE.fullmatch(remainder)
    if match is None:
        raise InvalidArgument(f"reference {text!r}: invalid reference format")
    path, tag, digest = match["path"], match["tag"] or "", match["digest"] or ""
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(
            f"reference {text!r}: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    if digest:
        _check_digest(digest, text)
    if not tag and not digest and default_tag:
        tag = default_tag
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _check_digest(digest: str, text: str) -> None:
    algorithm, _, encoded = digest.partition(":")
    if not re.fullmatch(_DIGEST, digest):
        raise InvalidArgument(f"reference {text!r}: invalid digest {digest!r}")
    expected = _DIGEST_HEX_LENGTH.get(algorithm)
    if expected is None:
        raise InvalidArgument(f"reference {text!r}: unsupported digest algorithm {algorithm!r}")
    if len(encoded) != expected or encoded.lower() != encoded:
        raise InvalidArgument(f"reference {text!r}: invalid {algorithm} digest {digest!r}")


def familiarize(text: str) -> str:
    """The familiar form of any reference text (``docker.io/library/busybox:latest`` → ``busybox:latest``)."""
    return parse(text, default_tag=None).familiar

