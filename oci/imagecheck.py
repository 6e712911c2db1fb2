"""Smart-client image helpers: manifests for platforms, walks, sizes, check (reference §5).

Pure and synchronous; the caller supplies how to read a small JSON blob
(``read_blob(desc) -> bytes``, raising NotFound when absent) and, for
``check``, whether a blob is present (``exists(desc) -> bool``).  The CLI
backs these with RPCs, the daemon (export, unpack, CRI) with its content store
from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from oci import mediatypes, platforms
from oci.descriptor import Descriptor, Platform
from oci.identity import chain_id
from oci.manifest import ImageConfig, Manifest, parse_config, parse_index, parse_manifest
from oci.platforms import Matcher
from wire.errdefs import InvalidArgument, NotFound

ReadBlob = Callable[[Descriptor], bytes]
Exists = Callable[[Descriptor], bool]

MAX_DEPTH = 8


@attrs.frozen(kw_only=True)
class ImageCheck:
    """``images check`` for one image and platform matcher.

    ``available``: a manifest for the platform could be read.  ``required``:
    its config and layers; ``present``/``missing`` split them.
    """

    available: bool
    required: tuple[Descriptor, ...]
    present: tuple[Descriptor, ...]
    missing: tuple[Descriptor, ...]

    @property
    def complete(self) -> bool:
        return self.available and not self.missing

    @property
    def present_size(self) -> int:
        return sum(d.size for d in self.present)

    @property
    def required_size(self) -> int:
        return sum(d.size for d in self.required)


@attrs.frozen(kw_only=True)
class RootFS:
    """What unpacking one manifest needs: its layers, their diff IDs, the top chain ID."""

    manifest: Manifest
    config: ImageConfig
    layers: tuple[Descriptor, ...]
    diff_ids: tuple[str, ...]
    chain_id: str


def _config_platform(config: ImageConfig) -> Platform | None:
    if not config.os or not config.architecture:
        return None
    return Platform(os=config.os, architecture=config.architecture, variant=config.variant,
                    os_version=config.os_version)


def _manifest_matches(desc: Descriptor, matcher: Matcher, read_blob: ReadBlob) -> bool:
    if matcher.match_all:
        return True
    if desc.platform is not None:
        return matcher.match(desc.platform)
    manifest = parse_manifest(read_blob(desc), f"manifest {desc.digest}")
    plat = _config_platform(parse_config(read_blob(manifest.config), f"image config {manifest.config.digest}"))
    return plat is None or matcher.match(plat)


def manifests_for(target: Descriptor, matcher: Matcher, read_blob: ReadBlob) -> list[Descriptor]:
    """Every manifest under ``target`` the matcher accepts, in index order (best first for one)."""
    found: list[Descriptor] = []

    def visit(desc: Descriptor, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"index {target.digest}: nested more than {MAX_DEPTH} levels deep")
        if mediatypes.is_manifest(desc.media_type):
            if _manifest_matches(desc, matcher, read_blob) and desc.digest not in {d.digest for d in found}:
                found.append(desc)
        elif mediatypes.is_index(desc.media_type):
            for entry in parse_index(read_blob(desc), f"index {desc.digest}").manifests:
                if entry.platform is not None and not matcher.match(entry.platform):
                    continue
                visit(entry, depth + 1)
        elif mediatypes.is_schema1(desc.media_type):
            raise InvalidArgument(f"{desc.media_type} {desc.digest}: Docker schema 1 manifests are not supported")

    visit(target, 0)
    if not matcher.match_all and len(found) > 1:
        ranked = sorted(found, key=lambda d: matcher.rank(d.platform) if d.platform else 1 << 30)
        found = ranked
    return found


def manifest_for(target: Descriptor, matcher: Matcher, read_blob: ReadBlob) -> Descriptor:
    """The one manifest the matcher prefers; NotFound naming the platform when none matches."""
    if mediatypes.is_index(target.media_type):
        return platforms.choose_manifest(parse_index(read_blob(target), f"index {target.digest}"),
                                         matcher, read_blob)
    found = manifests_for(target, matcher, read_blob)
    if not found:
        raise NotFound(f"image {target.digest}: no manifest for platform {matcher.describe()}")
    return found[0]


def rootfs(manifest_desc: Descriptor, read_blob: ReadBlob) -> RootFS:
    """Layers, diff IDs and chain ID of a manifest; layer and diff ID counts must agree."""
    manifest = parse_manifest(read_blob(manifest_desc), f"manifest {manifest_desc.digest}")
    config = parse_config(read_blob(manifest.config), f"image config {manifest.config.digest}")
    if len(manifest.layers) != len(config.diff_ids):
        raise InvalidArgument(
            f"manifest {manifest_desc.digest}: {len(manifest.layers)} layers but "
            f"{len(config.diff_ids)} diff ids in config {manifest.config.digest}")
    return RootFS(manifest=manifest, config=config, layers=manifest.layers, diff_ids=config.diff_ids,
                  chain_id=chain_id(config.diff_ids))


def walk(target: Descriptor, matcher: Matcher, read_blob: ReadBlob) -> list[Descriptor]:
    """Every blob an image needs for the matched platforms, parents before children, once each.

    Indexes are walked into matching entries; manifests contribute config and
    layers.  Documents are read (they must be present); leaves are not.
    """
    out: list[Descriptor] = []
    seen: set[str] = set()

    def visit(desc: Descriptor, depth: int) -> None:
        if desc.digest in seen:
            return
        if depth > MAX_DEPTH:
            raise InvalidArgument(f"image {target.digest}: nested more than {MAX_DEPTH} levels deep")
        seen.add(desc.digest)
        out.append(desc)
        if mediatypes.is_index(desc.media_type):
            for entry in parse_index(read_blob(desc), f"index {desc.digest}").manifests:
                if mediatypes.is_manifest(entry.media_type) and not _manifest_matches(entry, matcher, read_blob):
                    continue
                if entry.platform is not None and not matcher.match(entry.platform):
                    continue
                visit(entry, depth + 1)
        elif mediatypes.is_manifest(desc.media_type):
            manifest = parse_manifest(read_blob(desc), f"manifest {desc.digest}")
            for child in (manifest.config, *manifest.layers):
                visit(child, depth + 1)

    visit(target, 0)
    return out


def size(target: Descriptor, matcher: Matcher, read_blob: ReadBlob) -> int:
    """Bytes of every blob ``walk`` reaches (what ``images ls`` shows as SIZE)."""
    return sum(d.size for d in walk(target, matcher, read_blob))


def image_platforms(target: Descriptor, read_blob: ReadBlob) -> list[Platform]:
    """The platforms an image offers (index entries, or a manifest's config), normalized."""
    out: list[Platform] = []

    def visit(desc: Descriptor, depth: int) -> None:
        if depth > MAX_DEPTH:
            return
        if mediatypes.is_index(desc.media_type):
            for entry in parse_index(read_blob(desc), f"index {desc.digest}").manifests:
                if entry.platform is not None and mediatypes.is_manifest(entry.media_type):
                    out.append(platforms.normalize(entry.platform))
                else:
                    visit(entry, depth + 1)
        elif mediatypes.is_manifest(desc.media_type):
            manifest = parse_manifest(read_blob(desc), f"manifest {desc.digest}")
            plat = _config_platform(parse_config(read_blob(manifest.config), f"image config {manifest.config.digest}"))
            if plat is not None:
                out.append(platforms.normalize(plat))

    visit(target, 0)
    return list(dict.fromkeys(out))


def check(target: Descriptor, matcher: Matcher, read_blob: ReadBlob, exists: Exists) -> ImageCheck:
    """containerd's ``images.Check``: is the manifest there, and which of its blobs are."""
    try:
        manifest_desc = manifest_for(target, matcher, read_blob)
        manifest = parse_manifest(read_blob(manifest_desc), f"manifest {manifest_desc.digest}")
    except NotFound:
        return ImageCheck(available=False, required=(target,), present=(), missing=(target,))
    required = (manifest.config, *manifest.layers)
    present = tuple(d for d in required if exists(d))
    have = {d.digest for d in present}
    return ImageCheck(available=True, required=required, present=present,
                      missing=tuple(d for d in required if d.digest not in have))


def format_bytes(n: float) -> str:
    """containerd's ``progress.Bytes``: ``%.1f`` of the largest binary unit (``2.6 MiB``)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    value = float(n)
    i = 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    return f"{value:.1f} {units[i]}"
