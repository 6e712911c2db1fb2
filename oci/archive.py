"""Image archives: read OCI image-layout tars and ``docker save`` tars in one pass.

``read_archive`` iterates the tar members once and hands each blob to the
caller's ``on_blob(key, size, fileobj)`` to stream into its content store;
only small JSON documents (manifests, indexes, configs, at most
``JSON_RETAIN_LIMIT`` bytes) are kept in memory so the image graph can be
walked afterwards.  ``key`` is the blob's digest for ``blobs/<alg>/<hex>``
members and for documents generated here, and the member path otherwise
(docker save layers and configs: their digests are in the result).
``fileobj`` is valid only during the call; what the callback leaves unread
is read (and verified) afterwards, and its exceptions propagate unchanged.

For docker save archives the schema 2 manifests and the index are
synthesized byte for byte as containerd's importer does and handed over too.
Writing lives in :mod:`oci.archive_writer` (re-exported here).
"""

from __future__ import annotations

import io
import json
import lzma
import posixpath
import struct
import tarfile
import zlib
from collections.abc import Callable
from typing import BinaryIO

import attrs

from oci import _json, archive_names, mediatypes
from oci import platforms as _platforms
from oci._digest import ALGORITHMS, is_digest, sha256_of
from oci._hashing import HashingReader
from oci.archive_writer import ArchiveWriter
from oci.descriptor import Descriptor, Platform
from oci.identity import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, child_gc_labels
from oci.manifest import Index, children, parse_index
from oci.platforms import Matcher, host_matcher, host_platform, normalize
from wire.errdefs import InvalidArgument, NotFound

__all__ = ["ArchiveImage", "ArchiveIndex", "ArchiveWriter", "read_archive", "OnBlob"]

OnBlob = Callable[[str, int, BinaryIO], None]

JSON_RETAIN_LIMIT = 4 << 20  # manifests/configs kept for the walk (registries refuse > ~4 MB)
METADATA_LIMIT = 20 << 20  # index.json / manifest.json / oci-layout / repositories
LAYOUT_VERSION = "1.0.0"
_METADATA = ("oci-layout", "index.json", "manifest.json", "repositories")
_GZIP_MAGIC = b"\x1f\x8b\x08"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@attrs.frozen(kw_only=True)
class ArchiveImage:
    """An image record the archive asks for: a name and its target."""

    name: str
    target: Descriptor


@attrs.frozen(kw_only=True)
class ArchiveIndex:
    """What an archive holds, once every blob has been handed over.

    ``index``: the root index blob (``index.json``, or the one synthesized for
    docker save), handed over like any blob.  ``members``: member path →
    (digest, size) for every blob handed over by path or digest.
    ``gc_labels``: parent digest → the child GC labels to set on that blob
    (children filtered by platform).  ``missing``: configs/layers the chosen
    platforms need that the archive lacks (e.g. foreign layers).
    """

    format: str  # "oci" or "docker"
    index: Descriptor
    images: tuple[ArchiveImage, ...]
    members: dict[str, Descriptor] = attrs.field(hash=False)
    gc_labels: dict[str, dict[str, str]] = attrs.field(hash=False)
    missing: tuple[str, ...] = ()


@attrs.define(eq=False)
class _Pass:
    """What one pass over the tar collected."""

    layout: dict | None = None
    index_json: bytes | None = None
    docker_manifests: list | None = None
    repositories: dict | None = None
    members: dict[str, Descriptor] = attrs.Factory(dict)
    heads: dict[str, bytes] = attrs.Factory(dict)  # member path → first bytes
    symlinks: dict[str, str] = attrs.Factory(dict)
    documents: dict[str, bytes] = attrs.Factory(dict)  # digest → retained JSON
    handed: set[str] = attrs.Factory(set)  # digests handed over


def read_archive(
    fileobj: BinaryIO,
    on_blob: OnBlob,
    *,
    base_name: str | None = None,
    index_name: str = "",
    digests: bool = False,
    skip_digest_for_named: bool = False,
    all_platforms: bool = False,
    platform: Matcher | None = None,
) -> ArchiveIndex:
    """Read an image archive in one pass, handing each blob to ``on_blob``.

    Naming follows ``ctr images import``: ``base_name`` None means the
    ``import-<date>`` prefix and keeps only full names under it; a given
    ``base_name`` prefixes tag-only names and keeps full ones.  ``digests``
    adds ``<base>@<digest>`` names (``skip_digest_for_named``: only for
    unnamed entries); ``index_name`` names the root index.  Platform
    filtering (host by default, ``platform`` to choose, ``all_platforms`` for
    none) decides which manifests must be present.

    Raises InvalidArgument for malformed archives (bad member names, wrong
    digests, bad JSON) and NotFound for missing index/manifest/config/layers.
    """
    found = _scan(fileobj, on_blob)
    if found.layout is not None or (found.index_json is not None and found.docker_manifests is None):
        fmt, index_desc, index = _oci_index(found, on_blob)
    elif found.docker_manifests is not None:
        fmt, index_desc, index = "docker", *_docker_index(found, on_blob)
    else:
        raise NotFound("archive: no index.json or manifest.json found (not an OCI layout or docker save tar)")

    if base_name is None:
        base, filter_prefix = archive_names.default_base_name(), True
    else:
        base, filter_prefix = base_name, False
    translate = archive_names.ref_translator(base, filter_prefix=filter_prefix)
    images: list[ArchiveImage] = []
    for entry in index.manifests:
        name = archive_names.image_name(entry.annotations, translate)
        if name:
            images.append(ArchiveImage(name=name, target=entry))
        if skip_digest_for_named and name:
            continue
        if digests and base:
            images.append(ArchiveImage(name=f"{base}@{entry.digest}", target=entry))
    if index_name:
        images.append(ArchiveImage(name=index_name, target=index_desc))

    matcher = _platforms.all_platforms() if all_platforms else (platform or host_matcher())
    gc_labels, missing = _walk(index_desc, found, matcher)
    return ArchiveIndex(format=fmt, index=index_desc, images=tuple(images), members=found.members,
                        gc_labels=gc_labels, missing=tuple(missing))



# -- the single pass ---------------------------------------------------------


def _member_path(member: tarfile.TarInfo) -> str:
    name = member.name
    clean = posixpath.normpath(name)
    if name.startswith("/") or clean == ".." or clean.startswith("../") or "\x00" in name:
        raise InvalidArgument(f"archive member {name!r}: path escapes the archive")
    return clean


def _blob_key(path: str) -> tuple[str, str]:
    """(key, algorithm): the digest for ``blobs/<alg>/<hex>``, else the path and sha256."""
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] in ALGORITHMS:
        digest = f"{parts[1]}:{parts[2]}"
        if is_digest(digest):
            return digest, parts[1]
    if is_digest(path):
        raise InvalidArgument(f"archive member {path!r}: a path must not look like a digest")
    return path, "sha256"


def _read_limited(stream: BinaryIO, size: int, path: str) -> bytes:
    if size > METADATA_LIMIT:
        raise InvalidArgument(f"archive member {path!r}: {size} bytes is too large")
    return stream.read(size)


# What tarfile (and the decompressors under it) raise on damaged input.
_TAR_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, TypeError, ValueError, struct.error)


class _GuardedStream:
    """A tar member stream whose decoding errors become InvalidArgument naming the member."""

    def __init__(self, raw: BinaryIO, path: str):
        self._raw, self._path = raw, path

    def read(self, n: int = -1) -> bytes:
        try:
            return self._raw.read(n)
        except _TAR_ERRORS as exc:
            raise InvalidArgument(f"archive member {self._path!r}: malformed tar: {exc}") from None


def _scan(fileobj: BinaryIO, on_blob: OnBlob) -> _Pass:
    found = _Pass()
    try:
        tar = tarfile.open(fileobj=fileobj, mode="r|*")
    except _TAR_ERRORS as exc:
        raise InvalidArgument(f"archive: not a tar stream: {exc}") from None
    try:
        while (member := _next_member(tar)) is not None:
            path = _member_path(member)
            if member.issym():
                found.symlinks[path] = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                continue
            if member.islnk():
                found.symlinks[path] = posixpath.normpath(member.linkname)
                continue
            if not member.isreg():
                continue
            stream = _GuardedStream(tar.extractfile(member), path)
            if path in _METADATA:
                _take_metadata(found, path, _read_limited(stream, member.size, path))
                continue
            _take_blob(found, path, member.size, stream, on_blob)
    finally:
        try:
            tar.close()
        except _TAR_ERRORS:
            pass
    return found


def _next_member(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except _TAR_ERRORS as exc:
        raise InvalidArgument(f"archive: malformed tar: {exc}") from None


def _take_metadata(found: _Pass, path: str, data: bytes) -> None:
    if path == "index.json":
        found.index_json = data
        return
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"archive member {path!r}: not valid JSON: {exc}") from None
    if path == "oci-layout":
        if not isinstance(value, dict):
            raise InvalidArgument("archive member 'oci-layout': expected a JSON object")
        found.layout = value
    elif path == "manifest.json":
        if not isinstance(value, list):
            raise InvalidArgument("archive member 'manifest.json': expected a JSON array")
        found.docker_manifests = value
    elif isinstance(value, dict):
        found.repositories = value


def _take_blob(found: _Pass, path: str, size: int, stream: BinaryIO, on_blob: OnBlob) -> None:
    key, algorithm = _blob_key(path)
    reader = HashingReader(stream, size, algorithm=algorithm, retain_limit=JSON_RETAIN_LIMIT)
    on_blob(key, size, reader)
    reader.drain()
    if reader.offset != size:
        raise InvalidArgument(f"archive member {path!r}: ends after {reader.offset} of {size} bytes")
    digest = reader.digest_as(algorithm)
    if key != path and digest != key:
        raise InvalidArgument(f"archive member {path!r}: content digest is {digest}, not the one its name says")
    found.members[path] = Descriptor(media_type="", digest=digest, size=size)
    found.heads[path] = reader.head
    found.handed.add(digest)
    if reader.retained is not None:
        found.documents[digest] = reader.retained
        if algorithm != "sha256":
            found.documents[reader.sha256] = reader.retained


def _hand_document(found: _Pass, data: bytes, media_type: str, on_blob: OnBlob) -> Descriptor:
    desc = Descriptor(media_type=media_type, digest=sha256_of(data), size=len(data))
    on_blob(desc.digest, desc.size, io.BytesIO(data))
    found.documents[desc.digest] = data
    found.handed.add(desc.digest)
    return desc


# -- OCI layout --------------------------------------------------------------


def _oci_index(found: _Pass, on_blob: OnBlob) -> tuple[str, Descriptor, Index]:
    if found.layout is not None:
        version = found.layout.get("imageLayoutVersion")
        if version != LAYOUT_VERSION:
            raise InvalidArgument(f"archive member 'oci-layout': unsupported imageLayoutVersion {version!r}")
    if found.index_json is None:
        raise NotFound("archive: OCI image layout has no index.json")
    index = parse_index(found.index_json, "archive index.json")
    desc = _hand_document(found, found.index_json, mediatypes.OCI_INDEX, on_blob)
    return "oci", desc, index


# -- docker save -------------------------------------------------------------


def _resolve(found: _Pass, path: str, what: str) -> tuple[str, Descriptor]:
    clean = posixpath.normpath(path) if path else path
    for _ in range(8):
        if clean in found.members:
            return clean, found.members[clean]
        if clean not in found.symlinks:
            break
        clean = found.symlinks[clean]
    raise NotFound(f"archive: {what} {path!r} not found")


def _layer_media_type(head: bytes) -> str:
    if not head:
        return mediatypes.DOCKER_LAYER
    if head.startswith(_ZSTD_MAGIC):
        return mediatypes.DOCKER_LAYER_ZSTD
    if head.startswith(_GZIP_MAGIC):
        return mediatypes.DOCKER_LAYER_GZIP
    return mediatypes.DOCKER_LAYER


def _config_platform(data: bytes | None, path: str) -> Platform:
    if data is None:
        raise InvalidArgument(f"archive: image config {path!r} is not a JSON document")
    doc = _json.load_object(data, f"archive image config {path!r}")
    fields = {key: doc.get(key) for key in ("os", "architecture", "variant", "os.version")}
    fields = {k: v if isinstance(v, str) else "" for k, v in fields.items()}
    features = doc.get("os.features")
    platform = Platform(
        os=fields["os"] or host_platform().os,
        architecture=fields["architecture"],
        variant=fields["variant"],
        os_version=fields["os.version"],
        os_features=tuple(f for f in features if isinstance(f, str)) if isinstance(features, list) else (),
    )
    return normalize(platform)


def _docker_entry(entry: object, i: int) -> tuple[str, list[str], list[str]]:
    what = f"archive manifest.json entry {i}"
    if not isinstance(entry, dict):
        raise InvalidArgument(f"{what}: expected an object")
    config = _json.get_str(entry, "Config", what, required=True)
    tags = _json.get_str_list(entry, "RepoTags", what) or ()
    layers = _json.get_str_list(entry, "Layers", what) or ()
    return config, list(tags), list(layers)


def _legacy_names(found: _Pass, layers: list[str]) -> list[str]:
    """Names from the legacy ``repositories`` file whose tag points at the top layer."""
    if not found.repositories or not layers:
        return []
    top = posixpath.dirname(posixpath.normpath(layers[-1]))
    names = []
    for repo, tags in found.repositories.items():
        if isinstance(tags, dict):
            names += [f"{repo}:{tag}" for tag, layer_id in tags.items() if layer_id == top]
    return names


def _docker_index(found: _Pass, on_blob: OnBlob) -> tuple[Descriptor, Index]:
    entries: list[Descriptor] = []
    for i, raw in enumerate(found.docker_manifests):
        config_path, tags, layer_paths = _docker_entry(raw, i)
        config_path, config = _resolve(found, config_path, "image config")
        config = attrs.evolve(config, media_type=mediatypes.DOCKER_CONFIG)
        layers = []
        for layer_path in layer_paths:
            resolved, layer = _resolve(found, layer_path, "layer")
            layers.append(attrs.evolve(layer, media_type=_layer_media_type(found.heads[resolved])))
        manifest = {
            "schemaVersion": 2,
            "mediaType": mediatypes.DOCKER_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
        desc = _hand_document(found, _json.dump(manifest), mediatypes.DOCKER_MANIFEST, on_blob)
        platform = _config_platform(found.documents.get(config.digest), config_path)
        desc = attrs.evolve(desc, platform=platform)
        names = tags or _legacy_names(found, layer_paths)
        if not names:
            entries.append(desc)
        for tag in names:
            normalized = archive_names.normalize_docker_ref(tag)
            entries.append(attrs.evolve(desc, annotations={
                ANNOTATION_IMAGE_NAME: normalized,
                ANNOTATION_REF_NAME: archive_names.oci_ref_name(normalized),
            }))
    index = Index(manifests=tuple(entries))
    index_desc = _hand_document(found, _json.dump(index.to_json()), mediatypes.OCI_INDEX, on_blob)
    return index_desc, index


# -- the walk ----------------------------------------------------------------


def _walk(root: Descriptor, found: _Pass, matcher: Matcher) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Child GC labels of every walked blob, and the leaves the archive lacks."""
    labels: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    visited: set[str] = set()
    stack = [root]
    while stack:
        desc = stack.pop()
        if desc.digest in visited:
            continue
        visited.add(desc.digest)
        if not (mediatypes.is_manifest(desc.media_type) or mediatypes.is_index(desc.media_type)):
            if desc.digest not in found.handed:
                missing.append(desc.digest)
            continue
        data = found.documents.get(desc.digest)
        if data is None:
            if desc.digest in found.handed:
                raise InvalidArgument(f"archive: {desc.media_type} {desc.digest} is not a small JSON document")
            raise NotFound(f"archive: {desc.media_type} {desc.digest} not found")
        kids = [k for k in children(desc, data) if k.platform is None or matcher.match(k.platform)]
        if kids:
            labels[desc.digest] = child_gc_labels(desc, kids)
        stack.extend(reversed(kids))
    return labels, missing
