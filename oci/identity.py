"""Layer identity (chain IDs) and the label keys containerd's GC and unpack rely on.

dockyard uses containerd's label keys verbatim so its tools and habits carry over.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from oci import mediatypes
from oci._digest import check_digest
from oci.descriptor import Descriptor

# Content labels.
LABEL_UNCOMPRESSED = "containerd.io/uncompressed"
LABEL_DISTRIBUTION_SOURCE_PREFIX = "containerd.io/distribution.source."
# GC labels (reference §13).
LABEL_GC_ROOT = "containerd.io/gc.root"
LABEL_GC_EXPIRE = "containerd.io/gc.expire"
LABEL_GC_FLAT = "containerd.io/gc.flat"
LABEL_GC_REF_CONTENT = "containerd.io/gc.ref.content"
LABEL_GC_REF_CONTENT_CONFIG = "containerd.io/gc.ref.content.config"
LABEL_GC_REF_CONTENT_MANIFEST_PREFIX = "containerd.io/gc.ref.content.m."
LABEL_GC_REF_CONTENT_LAYER_PREFIX = "containerd.io/gc.ref.content.l."
LABEL_GC_REF_CONTENT_REFERRER_PREFIX = "containerd.io/gc.ref.content.referrer.sha256."
LABEL_GC_REF_CONTENT_OTHER_PREFIX = "containerd.io/gc.ref.content."
LABEL_GC_REF_IMAGE = "containerd.io/gc.ref.image"
LABEL_GC_REF_SNAPSHOT_PREFIX = "containerd.io/gc.ref.snapshot."
LABEL_GC_BREF_IMAGE = "containerd.io/gc.bref.image"
LABEL_GC_BREF_CONTENT = "containerd.io/gc.bref.content"
LABEL_GC_BREF_CONTAINER = "containerd.io/gc.bref.container"
LABEL_GC_BREF_SNAPSHOT_PREFIX = "containerd.io/gc.bref.snapshot."
# Snapshot labels written during unpack (reference §5).
LABEL_SNAPSHOT_REF = "containerd.io/snapshot.ref"
LABEL_SNAPSHOT_PREFIX = "containerd.io/snapshot/"
LABEL_SNAPSHOT_DIFF_ID = "containerd.io/snapshot/diff-id"
LABEL_SNAPSHOT_PARENT_CHAIN_ID = "containerd.io/snapshot/parent-chain-id"
LABEL_SNAPSHOT_CRI_IMAGE_REF = "containerd.io/snapshot/cri.image-ref"
LABEL_SNAPSHOT_CRI_MANIFEST_DIGEST = "containerd.io/snapshot/cri.manifest-digest"
LABEL_SNAPSHOT_CRI_LAYER_DIGEST = "containerd.io/snapshot/cri.layer-digest"
LABEL_SNAPSHOT_CRI_IMAGE_LAYERS = "containerd.io/snapshot/cri.image-layers"

# Annotations.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_MANIFEST_SUBJECT = "io.containerd.manifest.subject"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Chain IDs of a layer stack, bottom first: c0 = d0, ci = sha256("c(i-1) di")."""
    out: list[str] = []
    for i, diff_id in enumerate(diff_ids):
        check_digest(diff_id, f"diff_id {i}")
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def chain_id(diff_ids: Sequence[str]) -> str:
    """The top chain ID: the name of the image's rootfs snapshot ("" for no layers)."""
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else ""


def gc_snapshot_label(snapshotter: str) -> str:
    """``containerd.io/gc.ref.snapshot.<snapshotter>``: on a config blob, names its top chain ID."""
    return LABEL_GC_REF_SNAPSHOT_PREFIX + snapshotter


def distribution_source_label(host: str) -> str:
    """``containerd.io/distribution.source.<host>``: comma-joined repository paths."""
    return LABEL_DISTRIBUTION_SOURCE_PREFIX + host


def _child_key(child: Descriptor) -> str:
    if ANNOTATION_MANIFEST_SUBJECT in child.annotations:
        return LABEL_GC_REF_CONTENT_REFERRER_PREFIX
    media_type = child.media_type
    if mediatypes.is_config(media_type):
        return LABEL_GC_REF_CONTENT_CONFIG
    if mediatypes.is_manifest(media_type):
        return LABEL_GC_REF_CONTENT_MANIFEST_PREFIX
    if mediatypes.is_layer(media_type):
        return LABEL_GC_REF_CONTENT_LAYER_PREFIX
    return LABEL_GC_REF_CONTENT_OTHER_PREFIX


def child_gc_labels(parent: Descriptor | None, children: Iterable[Descriptor]) -> dict[str, str]:
    """The labels to set on ``parent``'s blob so GC keeps ``children`` (values: child digests).

    Keys count per kind: ``…config``, ``…m.<i>``, ``…l.<i>``, ``…<i>``;
    a referrer (child annotated ``io.containerd.manifest.subject``) is keyed
    ``…referrer.sha256.<first 12 hex of its digest>``.  A key without a
    trailing dot gets its count appended from the second use on
    (``…config1``).  ``parent`` is accepted for symmetry with callers and
    is not needed to compute the keys.
    """
    del parent
    labels: dict[str, str] = {}
    counts: dict[str, int] = {}
    for child in children:
        key = _child_key(child)
        count = counts.get(key, 0)
        counts[key] = count + 1
        if key == LABEL_GC_REF_CONTENT_REFERRER_PREFIX:
            key += child.digest.partition(":")[2][:12]
        elif count > 0 or key.endswith("."):
            key += str(count)
        labels[key] = child.digest
    return labels
