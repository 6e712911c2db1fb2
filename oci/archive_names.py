"""How images in an archive get their names, as ``ctr images import`` names them."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from oci import reference
from oci.identity import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME


def normalize_docker_ref(text: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; a digest drops any tag."""
    ref = reference.parse(text)
    if ref.digest:
        return f"{ref.name}@{ref.digest}"
    return str(ref)


def oci_ref_name(name: str) -> str:
    """The OCI ``ref.name`` for a full name: its object (tag, ``tag@digest`` or ``@digest``)."""
    try:
        ref = reference.parse(name, default_tag=None)
    except Exception:  # not a reference: keep the text, as containerd does
        return name
    if ref.tag:
        return ref.tag + (f"@{ref.digest}" if ref.digest else "")
    if ref.digest:
        return "@" + ref.digest
    return name


def _is_image_prefix(text: str, prefix: str) -> bool:
    if not text.startswith(prefix):
        return False
    return len(text) == len(prefix) or text[len(prefix)] in "/:@"


def ref_translator(base: str, *, filter_prefix: bool) -> Callable[[str], str]:
    """Turn an OCI ``ref.name`` into an image name ("" = no name).

    A tag-only ref becomes ``<base>:<tag>``.  A full ref is kept; with
    ``filter_prefix`` only when it lies under ``base`` (or its last path
    element starts with ``base``).
    """
    def translate(ref: str) -> str:
        if not base:
            return ""
        if not any(c in ref for c in "/:@"):
            return f"{base}:{ref}"
        if filter_prefix and not _is_image_prefix(ref, base):
            last = ref.split("/")[-1]
            if last.startswith(base) and (len(last) == len(base) or last[len(base)] in ":@"):
                return ref
            return ""
        return ref
    return translate


def default_base_name(today: datetime.date | None = None) -> str:
    """ctr's default prefix for imported names: ``import-YYYY-MM-DD``."""
    return "import-" + (today or datetime.date.today()).isoformat()


def image_name(annotations: dict[str, str], translate: Callable[[str], str]) -> str:
    """``io.containerd.image.name`` if set, else the translated OCI ``ref.name``."""
    name = annotations.get(ANNOTATION_IMAGE_NAME, "")
    if name:
        return name
    ref_name = annotations.get(ANNOTATION_REF_NAME, "")
    return translate(ref_name) if ref_name else ""
