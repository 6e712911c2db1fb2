"""The image record, its validation and its field-path updates (reference §5).

Pure functions over values: the store applies them inside one transaction.
"""

from __future__ import annotations

import attrs

from oci.descriptor import Descriptor
from wire import errdefs, identifiers


@attrs.frozen(kw_only=True)
class Image:
    """A name pointing at a target (index or manifest) in one namespace."""

    name: str
    target: Descriptor
    labels: dict[str, str] = attrs.Factory(dict)
    created_at: int = 0
    updated_at: int = 0


def validate(image: Image) -> Image:
    """containerd's image checks; InvalidArgument naming the image."""
    if not isinstance(image.name, str) or not image.name:
        raise errdefs.InvalidArgument("image name must not be empty")
    identifiers.validate_free_form(image.name, "image name")
    identifiers.validate_labels(image.labels)
    target = image.target
    try:
        identifiers.validate_digest(target.digest)
    except errdefs.InvalidArgument as exc:
        raise errdefs.InvalidArgument(f"image {image.name!r}: target digest: {exc.message}") from None
    if target.size <= 0:
        raise errdefs.InvalidArgument(f"image {image.name!r}: target size must be greater than zero")
    if not target.media_type:
        raise errdefs.InvalidArgument(f"image {image.name!r}: target media type must be set")
    identifiers.validate_labels(target.annotations)
    return image


def _drop_empty(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}


def apply_update(current: Image, incoming: Image, fieldpaths: list[str] | None) -> Image:
    """The record after ``incoming`` is applied to ``current`` under ``fieldpaths``.

    No paths: everything but ``created_at`` is replaced.  ``labels.<k>`` /
    ``annotations.<k>`` copy one key (an empty value deletes it); ``labels``,
    ``annotations`` and ``target`` replace that part.  Anything else is
    InvalidArgument.
    """
    if not fieldpaths:
        return attrs.evolve(incoming, labels=_drop_empty(incoming.labels),
                            target=attrs.evolve(incoming.target,
                                                annotations=_drop_empty(incoming.target.annotations)),
                            created_at=current.created_at)
    labels = dict(current.labels)
    target = current.target
    annotations = dict(target.annotations)
    for path in fieldpaths:
        if path.startswith("labels."):
            key = path[len("labels."):]
            labels[key] = incoming.labels.get(key, "")
        elif path.startswith("annotations."):
            key = path[len("annotations."):]
            annotations[key] = incoming.target.annotations.get(key, "")
        elif path == "labels":
            labels = dict(incoming.labels)
        elif path == "annotations":
            annotations = dict(incoming.target.annotations)
        elif path == "target":
            target = incoming.target
            annotations = dict(incoming.target.annotations)
        else:
            raise errdefs.InvalidArgument(f"cannot update {path!r} field on image {current.name!r}")
    return attrs.evolve(current, labels=_drop_empty(labels),
                        target=attrs.evolve(target, annotations=_drop_empty(annotations)))


def filter_view(image: Image) -> dict:
    """What the filter language sees: ``name target.digest target.mediatype labels.* annotations.*``."""
    return {
        "name": image.name,
        "target": {"digest": image.target.digest, "mediatype": image.target.media_type},
        "labels": image.labels,
        "annotations": image.target.annotations,
    }
