import json

import pytest
from hypothesis import given, settings, strategies as st

from oci import mediatypes as mt
from oci.descriptor import Descriptor, Platform
from oci.manifest import children, parse_config, parse_index, parse_manifest
from wire.errdefs import InvalidArgument

A, B, C = ("sha256:" + ch * 64 for ch in "abc")


def d(media_type, digest=A, size=3, **extra):
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def manifest_doc(**changes):
    doc = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": d(mt.OCI_CONFIG, A), "layers": [d(mt.OCI_LAYER_GZIP, B, 10)],
    }
    doc.update(changes)
    return doc


def index_doc(**changes):
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        d(mt.OCI_MANIFEST, A, 5, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
    ]}
    doc.update(changes)
    return doc


def raw(doc):
    return json.dumps(doc).encode()


def test_parse_manifest():
    m = parse_manifest(raw(manifest_doc(annotations={"k": "v"})))
    assert m.config == Descriptor(media_type=mt.OCI_CONFIG, digest=A, size=3)
    assert [layer.digest for layer in m.layers] == [B]
    assert m.annotations == {"k": "v"}


def test_parse_index_keeps_platforms():
    index = parse_index(raw(index_doc()))
    assert index.manifests[0].platform == Platform(os="linux", architecture="arm64", variant="v8")


@pytest.mark.parametrize("doc, message", [
    (manifest_doc(manifests=[]), "must not contain 'manifests'"),
    (manifest_doc(schemaVersion=1), "schema 1"),
    (manifest_doc(fsLayers=[]), "schema 1"),
    (manifest_doc(mediaType=mt.DOCKER_SCHEMA1_SIGNED), "schema 1"),
    (manifest_doc(mediaType=mt.OCI_INDEX), "unexpected mediaType"),
    (manifest_doc(schemaVersion=True), "schemaVersion"),
    (manifest_doc(config=None), "missing 'config'"),
    (manifest_doc(layers={}), "'layers' must be an array"),
    (manifest_doc(config=d(mt.OCI_CONFIG, size=-1)), "negative size"),
    (manifest_doc(config=d(mt.OCI_CONFIG, size=1.5)), "'size' must be an integer"),
    (manifest_doc(config=d(mt.OCI_CONFIG, size=False)), "'size' must be an integer"),
    (manifest_doc(config=d(mt.OCI_CONFIG, digest="sha256:ABC")), "64 lowercase hex"),
    (manifest_doc(config=d(mt.OCI_CONFIG, digest="md5:" + "a" * 32)), "unsupported algorithm"),
    (manifest_doc(config=d("")), "empty mediaType"),
    (manifest_doc(layers=[d(mt.OCI_LAYER, urls=[1])]), "layer 0"),
])
def test_parse_manifest_rejects(doc, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_manifest(raw(doc))


@pytest.mark.parametrize("doc, message", [
    (index_doc(config=d(mt.OCI_CONFIG)), "must not contain 'config'"),
    (index_doc(layers=[]), "must not contain 'layers'"),
    (index_doc(manifests=None), "missing 'manifests'"),
    (index_doc(manifests=[d(mt.OCI_MANIFEST, platform={"os": "linux"})]), "missing 'architecture'"),
    (index_doc(schemaVersion=3), "unsupported schemaVersion 3"),
])
def test_parse_index_rejects(doc, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_index(raw(doc))


@pytest.mark.parametrize("data", [b"", b"[]", b"{", b"\xff\xfe", b"NaN", b'{"schemaVersion": NaN}', b"[" * 100000])
def test_garbage_is_invalid_argument(data):
    for parse in (parse_manifest, parse_index, parse_config):
        with pytest.raises(InvalidArgument):
            parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_invalid_argument(data):
    for parse in (parse_manifest, parse_index):
        try:
            parse(data)
        except InvalidArgument:
            pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
near_documents = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 1, "2", None]),
        "mediaType": st.sampled_from([mt.OCI_MANIFEST, mt.OCI_INDEX, "x", 3]),
        "config": st.one_of(json_values, st.just(d(mt.OCI_CONFIG))),
        "layers": st.one_of(json_values, st.just([d(mt.OCI_LAYER)])),
        "manifests": st.one_of(json_values, st.just([d(mt.OCI_MANIFEST)])),
        "annotations": json_values,
        "subject": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(near_documents)
def test_near_documents_raise_only_invalid_argument(doc):
    data = raw(doc)
    for parse in (parse_manifest, parse_index, parse_config):
        try:
            parse(data)
        except InvalidArgument:
            pass


def test_descriptor_json_round_trip_keeps_go_field_order():
    text = raw(d(mt.OCI_MANIFEST, A, 5, annotations={"b": "2", "a": "1"},
                 platform={"architecture": "arm", "os": "linux", "variant": "v7"}))
    desc = Descriptor.from_json(json.loads(text))
    assert list(desc.to_json()) == ["mediaType", "digest", "size", "annotations", "platform"]
    assert list(desc.to_json()["annotations"]) == ["a", "b"]
    assert Descriptor.from_json(desc.to_json()) == desc


def test_parse_config_reads_what_dockyard_needs():
    config = parse_config(raw({
        "architecture": "arm64", "os": "linux", "variant": "v8",
        "config": {
            "Env": ["PATH=/bin"], "Entrypoint": ["/init"], "Cmd": None, "WorkingDir": "/srv",
            "User": "1000:1000", "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
            "Labels": {"a": "b"}, "StopSignal": "SIGQUIT",
        },
        "rootfs": {"type": "layers", "diff_ids": [A, B]},
    }))
    assert config.entrypoint == ("/init",) and config.cmd is None
    assert config.exposed_ports == ("80/tcp",) and config.volumes == ("/data",)
    assert config.diff_ids == (A, B) and config.stop_signal == "SIGQUIT"
    assert (config.os, config.architecture, config.variant) == ("linux", "arm64", "v8")


def test_parse_config_rejects_bad_rootfs():
    with pytest.raises(InvalidArgument, match="diff_ids"):
        parse_config(raw({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}))
    with pytest.raises(InvalidArgument, match="not 'layers'"):
        parse_config(raw({"rootfs": {"type": "other", "diff_ids": []}}))


def test_children():
    m = raw(manifest_doc())
    assert [c.digest for c in children(Descriptor(media_type=mt.OCI_MANIFEST, digest=C, size=len(m)), m)] == [A, B]
    i = raw(index_doc())
    assert [c.digest for c in children(Descriptor(media_type=mt.OCI_INDEX, digest=C, size=len(i)), i)] == [A]
    assert children(Descriptor(media_type=mt.OCI_LAYER, digest=C, size=1), b"\x00") == []


def test_children_rejects_manifest_blob_that_is_an_index():
    i = raw(index_doc(mediaType=None))
    with pytest.raises(InvalidArgument, match="manifests"):
        children(Descriptor(media_type=mt.OCI_MANIFEST, digest=C, size=len(i)), i)
    with pytest.raises(InvalidArgument, match="schema 1"):
        children(Descriptor(media_type=mt.DOCKER_SCHEMA1_SIGNED, digest=C, size=1), b"{}")
