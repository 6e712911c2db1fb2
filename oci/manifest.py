"""Manifests, indexes and image configs: strict parsers and the children of a blob.

Every parser takes the blob's bytes and raises InvalidArgument naming what is
wrong; nothing else escapes for any input.
"""

from __future__ import annotations

from typing import Any

import attrs

from oci import _json, mediatypes
from oci._digest import check_digest
from oci.descriptor import Descriptor
from wire.errdefs import InvalidArgument


@attrs.frozen(kw_only=True)
class Manifest:
    """One image for one platform: a config and its layers, bottom first.

    Sequences of descriptors are tuples (no converter, so cattrs structures
    their elements).
    """

    schema_version: int = 2
    media_type: str = ""
    artifact_type: str = ""
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    annotations: dict[str, str] = attrs.field(factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": self.schema_version}
        if self.media_type:
            out["mediaType"] = self.media_type
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["config"] = self.config.to_json()
        out["layers"] = [layer.to_json() for layer in self.layers]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


@attrs.frozen(kw_only=True)
class Index:
    """A list of manifests (or nested indexes), usually one per platform."""

    schema_version: int = 2
    media_type: str = ""
    artifact_type: str = ""
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    annotations: dict[str, str] = attrs.field(factory=dict, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": self.schema_version}
        if self.media_type:
            out["mediaType"] = self.media_type
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        out["manifests"] = [m.to_json() for m in self.manifests]
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


@attrs.frozen(kw_only=True)
class ImageConfig:
    """The parts of an image config dockyard uses to build and run containers.

    ``entrypoint``/``cmd`` are None when the config leaves them unset (which
    differs from an explicit empty list when a user overrides one of them).
    """

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: dict[str, str] = attrs.field(factory=dict, hash=False)
    stop_signal: str = ""
    diff_ids: tuple[str, ...] = ()


def _check_schema(doc: dict, what: str) -> None:
    if "fsLayers" in doc or "signatures" in doc:
        raise InvalidArgument(f"{what}: Docker schema 1 manifests are not supported")
    version = _json.get_int(doc, "schemaVersion", what, required=True)
    if version == 1:
        raise InvalidArgument(f"{what}: Docker schema 1 manifests are not supported")
    if version != 2:
        raise InvalidArgument(f"{what}: unsupported schemaVersion {version}")


def _media_type(doc: dict, what: str, allowed: frozenset[str]) -> str:
    media_type = _json.get_str(doc, "mediaType", what)
    if mediatypes.is_schema1(media_type):
        raise InvalidArgument(f"{what}: Docker schema 1 media type {media_type!r} is not supported")
    if media_type and media_type not in allowed:
        raise InvalidArgument(f"{what}: unexpected mediaType {media_type!r}")
    return media_type


def _subject(doc: dict, what: str) -> Descriptor | None:
    obj = _json.get_obj(doc, "subject", what)
    return None if obj is None else Descriptor.from_json(obj, f"{what} subject")


def parse_manifest(data: bytes, what: str = "manifest") -> Manifest:
    """Parse an OCI image manifest or Docker schema 2 manifest."""
    doc = _json.load_object(data, what)
    _check_schema(doc, what)
    media_type = _media_type(doc, what, mediatypes.MANIFEST_TYPES)
    if "manifests" in doc:
        raise InvalidArgument(f"{what}: a manifest must not contain 'manifests' (is it an index?)")
    config = Descriptor.from_json(_json.get_obj(doc, "config", what, required=True), f"{what} config")
    layers = _json.get_list(doc, "layers", what, required=True)
    return Manifest(
        media_type=media_type,
        artifact_type=_json.get_str(doc, "artifactType", what),
        config=config,
        layers=tuple(Descriptor.from_json(layer, f"{what} layer {i}") for i, layer in enumerate(layers)),
        subject=_subject(doc, what),
        annotations=_json.get_str_map(doc, "annotations", what),
    )


def parse_index(data: bytes, what: str = "index") -> Index:
    """Parse an OCI image index or Docker manifest list."""
    doc = _json.load_object(data, what)
    _check_schema(doc, what)
    media_type = _media_type(doc, what, mediatypes.INDEX_TYPES)
    for key in ("config", "layers"):
        if key in doc:
            raise InvalidArgument(f"{what}: an index must not contain {key!r} (is it a manifest?)")
    manifests = _json.get_list(doc, "manifests", what, required=True)
    return Index(
        media_type=media_type,
        artifact_type=_json.get_str(doc, "artifactType", what),
        manifests=tuple(Descriptor.from_json(m, f"{what} manifest {i}") for i, m in enumerate(manifests)),
        subject=_subject(doc, what),
        annotations=_json.get_str_map(doc, "annotations", what),
    )


def parse_config(data: bytes, what: str = "image config") -> ImageConfig:
    """Parse an image config (OCI or Docker); only the fields dockyard uses are kept."""
    doc = _json.load_object(data, what)
    config = _json.get_obj(doc, "config", what) or {}
    inner = f"{what} config"
    rootfs = _json.get_obj(doc, "rootfs", what) or {}
    rootfs_type = _json.get_str(rootfs, "type", f"{what} rootfs")
    if rootfs and rootfs_type != "layers":
        raise InvalidArgument(f"{what}: rootfs type {rootfs_type!r} is not 'layers'")
    diff_ids = _json.get_str_list(rootfs, "diff_ids", f"{what} rootfs") or ()
    for i, diff_id in enumerate(diff_ids):
        check_digest(diff_id, f"{what} rootfs diff_ids[{i}]")
    return ImageConfig(
        os=_json.get_str(doc, "os", what),
        architecture=_json.get_str(doc, "architecture", what),
        variant=_json.get_str(doc, "variant", what),
        os_version=_json.get_str(doc, "os.version", what),
        env=_json.get_str_list(config, "Env", inner) or (),
        entrypoint=_json.get_str_list(config, "Entrypoint", inner),
        cmd=_json.get_str_list(config, "Cmd", inner),
        working_dir=_json.get_str(config, "WorkingDir", inner),
        user=_json.get_str(config, "User", inner),
        exposed_ports=tuple((_json.get_obj(config, "ExposedPorts", inner) or {}).keys()),
        volumes=tuple((_json.get_obj(config, "Volumes", inner) or {}).keys()),
        labels=_json.get_str_map(config, "Labels", inner),
        stop_signal=_json.get_str(config, "StopSignal", inner),
        diff_ids=diff_ids,
    )


def children(descriptor: Descriptor, blob: bytes) -> list[Descriptor]:
    """The descriptors ``blob`` (the content ``descriptor`` names) points at.

    A manifest's children are its config then its layers; an index's are its
    manifests; configs, layers and unknown types have none.  Schema 1 is
    rejected with InvalidArgument.
    """
    media_type = descriptor.media_type
    what = f"{media_type} {descriptor.digest}"
    if mediatypes.is_schema1(media_type):
        raise InvalidArgument(f"{what}: Docker schema 1 manifests are not supported")
    if mediatypes.is_manifest(media_type):
        manifest = parse_manifest(blob, what)
        return [manifest.config, *manifest.layers]
    if mediatypes.is_index(media_type):
        return list(parse_index(blob, what).manifests)
    return []
