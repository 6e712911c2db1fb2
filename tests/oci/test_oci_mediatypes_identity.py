import pytest

from oci import identity, mediatypes as mt
from oci.descriptor import Descriptor
from wire.errdefs import InvalidArgument

A, B, C = ("sha256:" + ch * 64 for ch in "abc")


def desc(media_type, digest=A, **kw):
    return Descriptor(media_type=media_type, digest=digest, size=1, **kw)


@pytest.mark.parametrize("media_type, role", [
    (mt.OCI_INDEX, "index"), (mt.DOCKER_MANIFEST_LIST, "index"),
    (mt.OCI_MANIFEST, "manifest"), (mt.DOCKER_MANIFEST, "manifest"),
    (mt.OCI_CONFIG, "config"), (mt.DOCKER_CONFIG, "config"),
    (mt.OCI_LAYER_GZIP, "layer"), (mt.DOCKER_LAYER_FOREIGN_GZIP, "layer"),
    ("application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "layer"),
    (mt.DOCKER_SCHEMA1_SIGNED, "schema1"),
    ("application/octet-stream", None),
])
def test_roles_are_exclusive(media_type, role):
    roles = {
        "index": mt.is_index, "manifest": mt.is_manifest, "config": mt.is_config,
        "layer": mt.is_layer, "schema1": mt.is_schema1,
    }
    assert [name for name, pred in roles.items() if pred(media_type)] == ([role] if role else [])


@pytest.mark.parametrize("media_type, compression", [
    (mt.OCI_LAYER, "uncompressed"), (mt.OCI_LAYER_GZIP, "gzip"), (mt.OCI_LAYER_ZSTD, "zstd"),
    (mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP, "gzip"),
    ("application/vnd.oci.image.layer.v1.tar+zstd+encrypted", "zstd"),
    (mt.DOCKER_LAYER, "uncompressed"), (mt.DOCKER_LAYER_GZIP, "gzip"), (mt.DOCKER_LAYER_ZSTD, "zstd"),
    (mt.DOCKER_LAYER_FOREIGN, "uncompressed"), (mt.DOCKER_LAYER_FOREIGN_GZIP, "gzip"),
])
def test_layer_compression(media_type, compression):
    assert mt.layer_compression(media_type) == compression


def test_layer_compression_refuses_non_layers():
    with pytest.raises(ValueError):
        mt.layer_compression(mt.OCI_CONFIG)


def test_non_distributable():
    assert mt.is_non_distributable(mt.DOCKER_LAYER_FOREIGN_GZIP)
    assert mt.is_non_distributable(mt.OCI_LAYER_NONDISTRIBUTABLE)
    assert not mt.is_non_distributable(mt.OCI_LAYER_GZIP)


def test_chain_ids_hand_computed():
    assert identity.chain_ids([]) == []
    assert identity.chain_ids([A]) == [A]
    assert identity.chain_ids([A, B, C]) == [
        A,
        "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
        "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588",
    ]
    assert identity.chain_id([A, B, C]).startswith("sha256:c1377126")


def test_chain_ids_reject_bad_diff_ids():
    with pytest.raises(InvalidArgument, match="diff_id 1"):
        identity.chain_ids([A, "sha256:nothex"])


def test_child_gc_labels_for_a_manifest():
    labels = identity.child_gc_labels(desc(mt.OCI_MANIFEST), [
        desc(mt.OCI_CONFIG, A), desc(mt.OCI_LAYER_GZIP, B), desc(mt.OCI_LAYER_GZIP, C),
    ])
    assert labels == {
        "containerd.io/gc.ref.content.config": A,
        "containerd.io/gc.ref.content.l.0": B,
        "containerd.io/gc.ref.content.l.1": C,
    }


def test_child_gc_labels_for_an_index_with_referrer_and_others():
    referrer = desc(mt.OCI_MANIFEST, C, annotations={identity.ANNOTATION_MANIFEST_SUBJECT: A})
    labels = identity.child_gc_labels(desc(mt.OCI_INDEX), [
        desc(mt.OCI_MANIFEST, A), desc(mt.DOCKER_MANIFEST, B), referrer,
        desc(mt.OCI_INDEX, C), desc("application/vnd.in-toto+json", A),
    ])
    assert labels == {
        "containerd.io/gc.ref.content.m.0": A,
        "containerd.io/gc.ref.content.m.1": B,
        "containerd.io/gc.ref.content.referrer.sha256.cccccccccccc": C,
        "containerd.io/gc.ref.content.0": C,
        "containerd.io/gc.ref.content.1": A,
    }


def test_second_config_gets_a_count():
    labels = identity.child_gc_labels(None, [desc(mt.OCI_CONFIG, A), desc(mt.DOCKER_CONFIG, B)])
    assert labels == {"containerd.io/gc.ref.content.config": A, "containerd.io/gc.ref.content.config1": B}


def test_label_constants_are_containerds():
    assert identity.gc_snapshot_label("overlayfs") == "containerd.io/gc.ref.snapshot.overlayfs"
    assert identity.distribution_source_label("docker.io") == "containerd.io/distribution.source.docker.io"
    assert identity.LABEL_UNCOMPRESSED == "containerd.io/uncompressed"
    assert identity.LABEL_SNAPSHOT_REF == "containerd.io/snapshot.ref"
    assert identity.LABEL_GC_ROOT == "containerd.io/gc.root"
    assert identity.LABEL_GC_EXPIRE == "containerd.io/gc.expire"
    assert identity.LABEL_GC_FLAT == "containerd.io/gc.flat"
    assert identity.LABEL_SNAPSHOT_DIFF_ID == "containerd.io/snapshot/diff-id"
    assert identity.LABEL_SNAPSHOT_PARENT_CHAIN_ID == "containerd.io/snapshot/parent-chain-id"
