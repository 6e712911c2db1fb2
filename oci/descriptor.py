"""Descriptors and platforms: the value types that point at content.

``Descriptor.from_json`` / ``Platform.from_json`` validate a decoded JSON
object strictly; ``to_json`` writes the fields in the order Go's image-spec
structs do, so documents we generate hash the same as containerd's.
"""

from __future__ import annotations

from typing import Any

import attrs

from oci import _json
from oci._digest import check_digest
from wire.errdefs import InvalidArgument


@attrs.frozen(kw_only=True)
class Platform:
    """Where an image runs: ``os[(os_version)]/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, obj: object, what: str = "platform") -> Platform:
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{what}: must be an object")
        return cls(
            os=_json.get_str(obj, "os", what, required=True),
            architecture=_json.get_str(obj, "architecture", what, required=True),
            variant=_json.get_str(obj, "variant", what),
            os_version=_json.get_str(obj, "os.version", what),
            os_features=_json.get_str_list(obj, "os.features", what) or (),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out


@attrs.frozen(kw_only=True)
class Descriptor:
    """A typed, sized, content-addressed pointer to a blob.

    Sequences are tuples and ``annotations`` a plain dict (no attrs
    converters, so the wire converter checks every element); treat the dict
    as read-only.  It takes no part in hashing.
    """

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = attrs.field(factory=dict, hash=False)
    platform: Platform | None = None
    artifact_type: str = ""

    @classmethod
    def from_json(cls, obj: object, what: str = "descriptor") -> Descriptor:
        if not isinstance(obj, dict):
            raise InvalidArgument(f"{what}: must be an object")
        media_type = _json.get_str(obj, "mediaType", what, required=True)
        if not media_type:
            raise InvalidArgument(f"{what}: empty mediaType")
        digest = check_digest(obj.get("digest"), f"{what}")
        size = _json.get_int(obj, "size", what, required=True)
        if size < 0:
            raise InvalidArgument(f"{what} {digest}: negative size {size}")
        platform_obj = _json.get_obj(obj, "platform", what)
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=_json.get_str_list(obj, "urls", what) or (),
            annotations=_json.get_str_map(obj, "annotations", what),
            platform=None if platform_obj is None else Platform.from_json(platform_obj, f"{what} platform"),
            artifact_type=_json.get_str(obj, "artifactType", what),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        return out
