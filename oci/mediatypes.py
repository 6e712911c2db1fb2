"""Media types of image content and the role each one plays (reference §5).

Pure constants and predicates; the CLI imports this module.
"""

from __future__ import annotations

# Indexes: a list of manifests, usually one per platform.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# Manifests: one image, config plus layers.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# Configs.
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

# Layers.
OCI_LAYER_PREFIX = "application/vnd.oci.image.layer."
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

# Rejected: Docker schema 1 (signed or not).
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# Compression names returned by layer_compression().
UNCOMPRESSED = "uncompressed"
GZIP = "gzip"
ZSTD = "zstd"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED})
_DOCKER_LAYER_BASES = frozenset({
    DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_LAYER_ZSTD, DOCKER_LAYER_FOREIGN, DOCKER_LAYER_FOREIGN_GZIP,
})
_FOREIGN_BASES = frozenset({
    DOCKER_LAYER_FOREIGN, DOCKER_LAYER_FOREIGN_GZIP,
})


def _split_suffixes(media_type: str) -> tuple[str, tuple[str, ...]]:
    """``base+s1+s2`` → (base, (s1, s2)); suffixes such as ``+encrypted`` ride along."""
    base, *suffixes = media_type.split("+")
    return base, tuple(suffixes)


def is_index(media_type: str) -> bool:
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    return media_type in MANIFEST_TYPES


def is_config(media_type: str) -> bool:
    return media_type in CONFIG_TYPES


def is_schema1(media_type: str) -> bool:
    return media_type in SCHEMA1_TYPES


def is_layer(media_type: str) -> bool:
    """OCI ``…image.layer.*`` or one of Docker's rootfs diff types (any ``+suffix``)."""
    if media_type.startswith(OCI_LAYER_PREFIX):
        return True
    return _split_suffixes(media_type)[0] in _DOCKER_LAYER_BASES


def is_non_distributable(media_type: str) -> bool:
    """Foreign (Docker) or non-distributable (OCI) layers: registries may not serve them."""
    if media_type.startswith(OCI_LAYER_PREFIX + "nondistributable."):
        return True
    return _split_suffixes(media_type)[0] in _FOREIGN_BASES


def layer_compression(media_type: str) -> str:
    """The compression of a layer media type: ``uncompressed``, ``gzip`` or ``zstd``.

    Raises ValueError for a media type that is not a layer or names an
    unknown compression; callers turn that into their own typed error.
    """
    if not is_layer(media_type):
        raise ValueError(f"media type {media_type!r} is not a layer")
    base, suffixes = _split_suffixes(media_type)
    if base.startswith(OCI_LAYER_PREFIX):
        found = [s for s in suffixes if s in (GZIP, ZSTD)]
        if not base.endswith(".tar"):
            raise ValueError(f"media type {media_type!r}: unknown layer format")
        return found[0] if found else UNCOMPRESSED
    if base.endswith(".gzip"):
        return GZIP
    if base.endswith(".zstd"):
        return ZSTD
    return UNCOMPRESSED
