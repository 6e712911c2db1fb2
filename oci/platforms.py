"""Platforms: parse, normalize and format specifiers, and match them like containerd.

Specifier: ``os[(os_version)]/architecture[/variant]``; a single element that
is a known OS or architecture is completed from the host.  Normalization maps
aliases (``x86_64``→``amd64``, ``aarch64``→``arm64``, ``armhf``→``arm/v7``) and
drops implied variants (``arm64/v8``, ``amd64/v1``).
"""

from __future__ import annotations

import platform as _host
import re
import sys
from collections.abc import Callable, Iterable

import attrs

from oci import mediatypes
from oci.descriptor import Descriptor, Platform
from oci.manifest import Index, parse_config, parse_index, parse_manifest
from wire.errdefs import InvalidArgument, NotFound

_KNOWN_OS = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
    "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos",
})
_KNOWN_ARCH = frozenset({
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64",
    "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64",
    "s390", "s390x", "sparc", "sparc64", "wasm",
})
_OS_PART_RE = re.compile(r"([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]*)\))?")
_PART_RE = re.compile(r"[A-Za-z0-9_.-]+")


def normalize_os(os_name: str) -> str:
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def normalize_arch(arch: str, variant: str = "") -> tuple[str, str]:
    """Canonical (architecture, variant) for an alias pair."""
    arch, variant = arch.lower(), variant.lower()
    if arch in ("i386", "i686", "386"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        if variant in ("8", "v8", "v8.0"):
            variant = ""
        elif variant in ("9", "9.0", "v9.0"):
            variant = "v9"
        return "arm64", variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            variant = "v7"
        elif variant in ("5", "6", "8"):
            variant = "v" + variant
        return "arm", variant
    return arch, variant


def normalize(p: Platform) -> Platform:
    arch, variant = normalize_arch(p.architecture, p.variant)
    return attrs.evolve(p, os=normalize_os(p.os), architecture=arch, variant=variant)


def format(p: Platform) -> str:  # noqa: A001 - mirrors platforms.Format
    """``os[(os_version)]/architecture[/variant]``; an empty OS prints as ``unknown``."""
    head = p.os or "unknown"
    if p.os_version:
        head += f"({p.os_version})"
    return "/".join(part for part in (head, p.architecture, p.variant) if part)


def host_platform() -> Platform:
    """The platform of this machine, from ``sys.platform`` and ``platform.machine()``."""
    os_name = "linux" if sys.platform.startswith("linux") else normalize_os(sys.platform)
    machine = _host.machine().lower()
    match = re.fullmatch(r"armv(\d+)\w*", machine)
    if match:
        arch, variant = normalize_arch("arm", "v" + match[1])
    else:
        arch, variant = normalize_arch(machine)
    return Platform(os=os_name, architecture=arch, variant=variant)


def parse(specifier: str) -> Platform:
    """Parse and normalize a specifier; InvalidArgument names a bad one."""
    if not isinstance(specifier, str) or not specifier or "*" in specifier:
        raise InvalidArgument(f"platform {specifier!r}: invalid platform specifier")
    parts = specifier.split("/")
    os_match = _OS_PART_RE.fullmatch(parts[0])
    if os_match is None or len(parts) > 3 or not all(_PART_RE.fullmatch(p) for p in parts[1:]):
        raise InvalidArgument(f"platform {specifier!r}: invalid platform specifier")
    os_name, os_version = normalize_os(os_match[1]), os_match[2] or ""
    host = host_platform()
    if len(parts) == 1:
        if os_name in _KNOWN_OS:
            return Platform(os=os_name, os_version=os_version, architecture=host.architecture,
                            variant=host.variant)
        arch, variant = normalize_arch(parts[0])
        if arch in _KNOWN_ARCH and os_version == "":
            return Platform(os=host.os, architecture=arch, variant=variant)
        raise InvalidArgument(f"platform {specifier!r}: unknown operating system or architecture")
    arch, variant = normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    return Platform(os=os_name, os_version=os_version, architecture=arch, variant=variant)


def _fallbacks(p: Platform) -> list[Platform]:
    """The platforms ``p`` can run, most preferred first (containerd's vector)."""
    def like(arch: str, variant: str) -> Platform:
        return attrs.evolve(p, architecture=arch, variant=variant)

    vector = [p]
    if p.architecture == "amd64":
        level = _version(p.variant)
        if level is not None and level > 1:
            vector += [like("amd64", f"v{n}") for n in range(level - 1, 0, -1)]
        vector.append(like("386", ""))
    elif p.architecture == "arm":
        level = _version(p.variant)
        if level is not None and level > 5:
            vector += [like("arm", f"v{n}") for n in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        variant = p.variant or "v8"
        major_text, dot, minor_text = variant.partition(".")
        major = _version(major_text)
        if major is not None and major >= 8:
            minor = int(minor_text) if dot and minor_text.isdigit() and len(variant) == 4 else 0

            def arm64(major: int, m: int) -> Platform:
                return like("arm64", f"v{major}" if m == 0 else f"v{major}.{m}")

            if major == 9:
                vector += [arm64(9, m) for m in range(minor - 1, -1, -1)]
                minor, major = minor + 5, 8
                vector.append(like("arm64", f"v8.{minor}"))
            vector += [arm64(major, m) for m in range(minor - 1, -1, -1)]
        if variant.startswith(("v8.", "v9.")):
            variant = "v8"
        vector += _fallbacks(like("arm", variant))
    return vector


def _version(variant: str) -> int | None:
    text = variant[1:] if variant.startswith("v") else variant
    return int(text) if text.isdigit() else None


def _same(want: Platform, got: Platform) -> bool:
    if (want.os, want.architecture, want.variant) != (got.os, got.architecture, got.variant):
        return False
    if want.os == "windows" and want.os_version and got.os_version:
        return want.os_version.split(".")[:3] == got.os_version.split(".")[:3]
    return True


@attrs.frozen(kw_only=True)
class Matcher:
    """Which platforms are acceptable, and in what order of preference.

    ``rank`` is the sort key: lower is preferred; None means no match.
    """

    candidates: tuple[Platform, ...] = ()
    ordered: bool = True
    match_all: bool = False

    def rank(self, p: Platform) -> int | None:
        if self.match_all:
            return 0
        got = normalize(p)
        for position, want in enumerate(self.candidates):
            if _same(want, got):
                return position if self.ordered else 0
        return None

    def match(self, p: Platform) -> bool:
        return self.rank(p) is not None

    def less(self, a: Platform, b: Platform) -> bool:
        rank_a, rank_b = self.rank(a), self.rank(b)
        if rank_a is None:
            return False
        return rank_b is None or rank_a < rank_b

    def describe(self) -> str:
        if self.match_all:
            return "all platforms"
        names = ", ".join(format(p) for p in self.candidates)
        return names if self.ordered else f"any of {names}"


def only(p: Platform) -> Matcher:
    """``p`` and what it can run, in containerd's fallback order."""
    vector = (normalize(c) for c in _fallbacks(normalize(p)))
    return Matcher(candidates=tuple(dict.fromkeys(vector)))


def host_matcher() -> Matcher:
    return only(host_platform())


def any_of(platforms: Iterable[Platform]) -> Matcher:
    """Exactly these platforms (normalized), with no preference among them."""
    return Matcher(candidates=tuple(normalize(p) for p in platforms), ordered=False)


def all_platforms() -> Matcher:
    return Matcher(match_all=True)


def choose_manifest(
    index: Index, matcher: Matcher, read_blob: Callable[[Descriptor], bytes]
) -> Descriptor:
    """The manifest of ``index`` (searched through nested indexes) ``matcher`` prefers.

    Entries without a platform are resolved through their config (read with
    ``read_blob``), which also drops them when it does not match; among the
    matches a stable sort by preference puts entries still without a platform
    last.  Nothing matches → NotFound naming the wanted and available platforms.
    """
    seen: list[str] = []
    found = _choose(index, matcher, read_blob, seen, depth=0)
    if found is None:
        available = ", ".join(dict.fromkeys(seen)) or "none"
        raise NotFound(f"no manifest for platform {matcher.describe()}: available: {available}")
    return found


def _choose(index, matcher, read_blob, seen, depth) -> Descriptor | None:
    if depth > 8:
        raise InvalidArgument("index: nested more than 8 levels deep")
    kept: list[tuple[Descriptor, Platform | None]] = []
    for entry in index.manifests:
        plat = entry.platform
        if plat is None and mediatypes.is_manifest(entry.media_type):
            plat = _config_platform(entry, read_blob)
        if plat is not None:
            seen.append(format(normalize(plat)))
            if not matcher.match(plat):
                continue
        elif not mediatypes.is_index(entry.media_type):
            continue
        kept.append((entry, plat))
    kept.sort(key=lambda item: (1, 0) if item[1] is None else (0, matcher.rank(item[1])))
    for entry, _ in kept:
        if mediatypes.is_manifest(entry.media_type):
            return entry
        if mediatypes.is_index(entry.media_type):
            nested = parse_index(read_blob(entry), f"index {entry.digest}")
            chosen = _choose(nested, matcher, read_blob, seen, depth + 1)
            if chosen is not None:
                return chosen
    return None


def _config_platform(entry: Descriptor, read_blob) -> Platform:
    manifest = parse_manifest(read_blob(entry), f"manifest {entry.digest}")
    config = parse_config(read_blob(manifest.config), f"image config {manifest.config.digest}")
    return Platform(os=config.os, architecture=config.architecture, variant=config.variant,
                    os_version=config.os_version)
