"""Layer media types and the compression each one implies."""

from __future__ import annotations

import enum

from wire.errdefs import NotImplemented_

MEDIA_TYPE_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPE_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


class Compression(str, enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYER_COMPRESSION: dict[str, Compression] = {
    MEDIA_TYPE_TAR: Compression.NONE,
    MEDIA_TYPE_TAR_GZIP: Compression.GZIP,
    MEDIA_TYPE_TAR_ZSTD: Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.foreign.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
}

# What compare() writes for each compression.
COMPRESSION_MEDIA_TYPE: dict[Compression, str] = {
    Compression.NONE: MEDIA_TYPE_TAR,
    Compression.GZIP: MEDIA_TYPE_TAR_GZIP,
    Compression.ZSTD: MEDIA_TYPE_TAR_ZSTD,
}


def layer_compression(media_type: str) -> Compression:
    """The compression of a layer blob of ``media_type``; unknown → NotImplemented_."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except KeyError:
        raise NotImplemented_(f"layer media type {media_type!r}: not supported") from None


def compression_named(name: str | Compression) -> Compression:
    try:
        return Compression(name)
    except ValueError:
        raise NotImplemented_(f"compression {name!r}: not supported") from None
