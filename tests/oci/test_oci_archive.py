import io
import json
import tarfile

import attrs
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.oci.archive_helpers import Collector, Image, ReadOnly, WriteOnly, gz, index_json, layer_tar, sha, tar_of
from oci import archive, mediatypes as mt
from oci import platforms as P
from oci.archive import ArchiveWriter, read_archive
from oci.descriptor import Descriptor, Platform
from oci.identity import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME
from wire.errdefs import FailedPrecondition, InvalidArgument, NotFound

AMD64 = P.only(Platform(os="linux", architecture="amd64"))


def index_entry(img: Image, spec: str | None = None, **annotations) -> Descriptor:
    platform = None if spec is None else P.parse(spec)
    return attrs.evolve(img.manifest, platform=platform, annotations=annotations)


def build_multiarch():
    """An amd64 + arm64 image behind an index blob, and the index's descriptor."""
    amd, arm = Image("amd64", {"a": b"amd64 bits\n"}), Image("arm64", {"a": b"arm64 bits\n"})
    data = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        index_entry(amd, "linux/amd64").to_json(), index_entry(arm, "linux/arm64").to_json(),
    ]}).encode()
    desc = Descriptor(media_type=mt.OCI_INDEX, digest=sha(data), size=len(data))
    return amd, arm, desc, {**amd.blobs, **arm.blobs, desc.digest: data}


def write_archive(blobs: dict[str, bytes], images: list[tuple[str, Descriptor]]) -> bytes:
    out = WriteOnly()
    with ArchiveWriter(out) as writer:
        for digest, data in blobs.items():
            writer.add_blob(Descriptor(media_type="application/octet-stream", digest=digest, size=len(data)),
                            io.BytesIO(data))
        for name, target in images:
            writer.add_image(name, target)
    return out.buf.getvalue()


# -- OCI layout round trip ------------------------------------------------------

def test_oci_round_trip_same_descriptors_and_bytes():
    amd, arm, idx, blobs = build_multiarch()
    single = Image("amd64", {"b": b"single\n"}, compress=False)
    spare = b"a blob no image needs"
    blobs = {**blobs, **single.blobs, sha(spare): spare}
    data = write_archive(blobs, [("docker.io/library/multi:1", idx), ("example.com/one:2", single.manifest)])

    got = Collector(chunk=7)
    result = read_archive(ReadOnly(data), got, base_name="", platform=AMD64)

    assert result.format == "oci"
    assert [(i.name, i.target) for i in result.images] == [
        ("docker.io/library/multi:1", attrs.evolve(idx, annotations={
            ANNOTATION_IMAGE_NAME: "docker.io/library/multi:1", ANNOTATION_REF_NAME: "1"})),
        ("example.com/one:2", attrs.evolve(single.manifest, annotations={
            ANNOTATION_IMAGE_NAME: "example.com/one:2", ANNOTATION_REF_NAME: "2"})),
    ]
    # every blob (the spare one too) was handed over intact, plus index.json itself
    assert {k: v for k, v in got.blobs.items() if k != result.index.digest} == blobs
    assert got.blobs[result.index.digest] == data_member(data, "index.json")
    assert result.missing == ()
    # GC labels follow the walk, filtered to amd64
    assert result.gc_labels[idx.digest] == {"containerd.io/gc.ref.content.m.0": amd.manifest.digest}
    assert result.gc_labels[amd.manifest.digest] == {
        "containerd.io/gc.ref.content.config": amd.config.digest,
        "containerd.io/gc.ref.content.l.0": amd.layer.digest,
    }
    assert arm.manifest.digest not in result.gc_labels
    assert result.gc_labels[result.index.digest] == {
        "containerd.io/gc.ref.content.0": idx.digest,
        "containerd.io/gc.ref.content.m.0": single.manifest.digest,
    }


def data_member(tar_bytes: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return tar.extractfile(name).read()


def test_writer_layout_members():
    img = Image("amd64", {"x": b"x"})
    data = write_archive(img.blobs, [("busybox:latest", img.manifest)])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        layout = json.loads(tar.extractfile("oci-layout").read())
        index = json.loads(tar.extractfile("index.json").read())
    assert names[0] == "oci-layout" and names[-1] == "index.json"
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in img.blobs} <= set(names)
    assert layout == {"imageLayoutVersion": "1.0.0"}
    assert index["mediaType"] == mt.OCI_INDEX
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "busybox:latest", "org.opencontainers.image.ref.name": "latest"}


def test_all_platforms_needs_every_manifest():
    amd, arm, idx, blobs = build_multiarch()
    del blobs[arm.manifest.digest]
    data = write_archive(blobs, [("multi:1", idx)])
    # the host (amd64) walk never needs the arm64 manifest
    result = read_archive(io.BytesIO(data), Collector(), base_name="", platform=AMD64)
    assert result.missing == ()
    with pytest.raises(NotFound, match=arm.manifest.digest):
        read_archive(io.BytesIO(data), Collector(), base_name="", all_platforms=True)


def test_missing_layers_are_reported_not_fatal():
    img = Image("amd64", {"x": b"x"})
    blobs = dict(img.blobs)
    del blobs[img.layer.digest]
    result = read_archive(io.BytesIO(write_archive(blobs, [("x:1", img.manifest)])), Collector(),
                          base_name="", platform=AMD64)
    assert result.missing == (img.layer.digest,)


def test_callback_may_leave_content_unread():
    img = Image("amd64", {"x": b"x" * 100_000})
    data = write_archive(img.blobs, [("x:1", img.manifest)])
    seen = []
    result = read_archive(io.BytesIO(data), lambda key, size, f: seen.append((key, size, f.read(3))),
                          base_name="", platform=AMD64)
    assert {key for key, _, _ in seen} == set(img.blobs) | {result.index.digest}
    assert all(size == len(img.blobs[key]) for key, size, _ in seen if key in img.blobs)


def test_compressed_archive_stream_reads():
    img = Image("amd64", {"x": b"x"})
    result = read_archive(io.BytesIO(gz(write_archive(img.blobs, [("x:1", img.manifest)]))), Collector(),
                          base_name="", platform=AMD64)
    assert result.images[0].target.digest == img.manifest.digest


# -- naming ---------------------------------------------------------------------

def named_archive():
    one, two = Image("amd64", {"1": b"1"}), Image("amd64", {"2": b"2"})
    three = Image("amd64", {"3": b"3"})
    entries = [
        attrs.evolve(one.manifest, annotations={ANNOTATION_REF_NAME: "v1"}),
        attrs.evolve(two.manifest, annotations={ANNOTATION_REF_NAME: "docker.io/library/foo:2"}),
        three.manifest,
    ]
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index_json([e.to_json() for e in entries]))]
    for img in (one, two, three):
        members += [(f"blobs/sha256/{d.split(':')[1]}", b) for d, b in img.blobs.items()]
    return tar_of(members), entries


def names(result):
    return [(i.name, i.target.digest) for i in result.images]


def test_base_name_prefixes_tags_and_keeps_full_refs():
    data, (one, two, three) = named_archive()
    result = read_archive(io.BytesIO(data), Collector(), base_name="myimg", platform=AMD64)
    assert names(result) == [("myimg:v1", one.digest), ("docker.io/library/foo:2", two.digest)]


def test_default_base_name_filters_full_refs(monkeypatch):
    monkeypatch.setattr(archive.archive_names, "default_base_name", lambda: "import-2026-01-02")
    data, (one, two, three) = named_archive()
    result = read_archive(io.BytesIO(data), Collector(), platform=AMD64)
    assert names(result) == [("import-2026-01-02:v1", one.digest)]


def test_digest_names_and_index_name():
    data, (one, two, three) = named_archive()
    result = read_archive(io.BytesIO(data), Collector(), base_name="b", digests=True, index_name="all",
                          platform=AMD64)
    assert names(result) == [
        ("b:v1", one.digest), (f"b@{one.digest}", one.digest),
        ("docker.io/library/foo:2", two.digest), (f"b@{two.digest}", two.digest),
        (f"b@{three.digest}", three.digest),
        ("all", result.index.digest),
    ]
    skipped = read_archive(io.BytesIO(data), Collector(), base_name="b", digests=True,
                           skip_digest_for_named=True, platform=AMD64)
    assert names(skipped) == [("b:v1", one.digest), ("docker.io/library/foo:2", two.digest),
                              (f"b@{three.digest}", three.digest)]


# -- docker save ------------------------------------------------------------------

def docker_save(repo_tags=("dsave:1", "example.com/x/dsave:2"), with_repositories=False):
    plain_a = layer_tar({"a.txt": b"docker-save-a\n"})
    plain_b = layer_tar({"b.txt": b"docker-save-b\n"})
    gz_b = gz(plain_b)
    config = json.dumps({"architecture": "arm64", "variant": "v8", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(plain_a), sha(plain_b), sha(plain_a)]}}).encode()
    config_name = sha(config).split(":")[1] + ".json"
    manifest = [{"Config": config_name, "RepoTags": list(repo_tags) or None,
                 "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"]}]
    members = [
        ("aaa", "dir"), ("aaa/VERSION", b"1.0"), ("aaa/json", b'{"id":"aaa"}'), ("aaa/layer.tar", plain_a),
        ("bbb/layer.tar", gz_b), ("ccc", "dir"), ("ccc/layer.tar", "->", "../aaa/layer.tar"),
        (config_name, config), ("manifest.json", json.dumps(manifest).encode()),
    ]
    if with_repositories:
        members.append(("repositories", b'{"legacy":{"7":"ccc"}}'))
    return tar_of(members), config, plain_a, gz_b


def test_docker_save_converts_like_containerd():
    data, config, plain_a, gz_b = docker_save()
    got = Collector()
    result = read_archive(ReadOnly(data), got, base_name="", platform=P.only(P.parse("linux/arm64")))
    assert result.format == "docker"
    assert result.members["aaa/layer.tar"].digest == sha(plain_a)
    assert got.blobs["aaa/layer.tar"] == plain_a and got.blobs["bbb/layer.tar"] == gz_b

    manifest_desc = result.images[0].target
    expected_manifest = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{sha(config)}","size":{len(config)}}},'
        '"layers":['
        f'{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"{sha(plain_a)}","size":{len(plain_a)}}},'
        f'{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{sha(gz_b)}","size":{len(gz_b)}}},'
        f'{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"{sha(plain_a)}","size":{len(plain_a)}}}]}}'
    ).encode()
    assert got.blobs[manifest_desc.digest] == expected_manifest
    assert manifest_desc.digest == sha(expected_manifest)
    assert manifest_desc.platform == Platform(os="linux", architecture="arm64")

    entry = ('{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{d}","size":{s},'
             '"annotations":{{"io.containerd.image.name":"{n}","org.opencontainers.image.ref.name":"{t}"}},'
             '"platform":{{"architecture":"arm64","os":"linux"}}}}')
    expected_index = ('{"schemaVersion":2,"manifests":[' + ",".join(
        entry.format(d=manifest_desc.digest, s=len(expected_manifest), n=n, t=t)
        for n, t in [("docker.io/library/dsave:1", "1"), ("example.com/x/dsave:2", "2")]) + "]}").encode()
    assert got.blobs[result.index.digest] == expected_index
    assert [i.name for i in result.images] == ["docker.io/library/dsave:1", "example.com/x/dsave:2"]
    assert result.gc_labels[manifest_desc.digest] == {
        "containerd.io/gc.ref.content.config": sha(config),
        "containerd.io/gc.ref.content.l.0": sha(plain_a),
        "containerd.io/gc.ref.content.l.1": sha(gz_b),
        "containerd.io/gc.ref.content.l.2": sha(plain_a),
    }


def test_docker_save_without_tags_uses_legacy_repositories_or_digests():
    data, *_ = docker_save(repo_tags=(), with_repositories=True)
    result = read_archive(io.BytesIO(data), Collector(), base_name="", platform=P.all_platforms())
    assert [i.name for i in result.images] == ["docker.io/library/legacy:7"]
    data, *_ = docker_save(repo_tags=())
    result = read_archive(io.BytesIO(data), Collector(), base_name="saved", digests=True)
    assert [i.name for i in result.images] == [f"saved@{result.images[0].target.digest}"]


# -- malformed archives ------------------------------------------------------------

def test_missing_index_json():
    with pytest.raises(NotFound, match="index.json"):
        read_archive(io.BytesIO(tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')])), Collector())
    with pytest.raises(NotFound, match="no index.json or manifest.json"):
        read_archive(io.BytesIO(tar_of([("hello", b"x")])), Collector())


def test_blob_with_wrong_digest_names_the_member():
    name = "blobs/sha256/" + "0" * 64
    with pytest.raises(InvalidArgument, match=name):
        read_archive(io.BytesIO(tar_of([(name, b"not that")])), Collector())


@pytest.mark.parametrize("bad", ["../evil", "blobs/../../evil", "/etc/passwd"])
def test_escaping_member_names(bad):
    with pytest.raises(InvalidArgument, match="escapes"):
        read_archive(io.BytesIO(tar_of([(bad, b"x")])), Collector())


def test_bad_layout_version_and_bad_json():
    with pytest.raises(InvalidArgument, match="imageLayoutVersion"):
        read_archive(io.BytesIO(tar_of([("oci-layout", b'{"imageLayoutVersion":"2"}'),
                                        ("index.json", index_json([]))])), Collector())
    with pytest.raises(InvalidArgument, match="index.json"):
        read_archive(io.BytesIO(tar_of([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                        ("index.json", b'{"schemaVersion":2,"layers":[]}')])), Collector())
    with pytest.raises(InvalidArgument, match="not a tar"):
        read_archive(io.BytesIO(b"definitely not a tar" * 100), Collector())


def test_docker_save_missing_layer_names_it():
    data = tar_of([("cfg.json", b'{"os":"linux","architecture":"amd64"}'),
                   ("manifest.json", b'[{"Config":"cfg.json","RepoTags":["a:b"],"Layers":["gone/layer.tar"]}]')])
    with pytest.raises(NotFound, match="gone/layer.tar"):
        read_archive(io.BytesIO(data), Collector())
    data = tar_of([("manifest.json", b'[{"Config":"nope.json","Layers":[]}]')])
    with pytest.raises(NotFound, match="nope.json"):
        read_archive(io.BytesIO(data), Collector())


def test_oversized_manifest_is_refused(monkeypatch):
    monkeypatch.setattr(archive, "JSON_RETAIN_LIMIT", 16)
    img = Image("amd64", {"x": b"x"})
    with pytest.raises(InvalidArgument, match="not a small JSON document"):
        read_archive(io.BytesIO(write_archive(img.blobs, [("x:1", img.manifest)])), Collector(),
                     base_name="", platform=AMD64)


# -- writer errors -----------------------------------------------------------------

def test_writer_refuses_wrong_content_and_then_stays_broken():
    writer = ArchiveWriter(WriteOnly())
    data = b"payload"
    with pytest.raises(InvalidArgument, match="content digest"):
        writer.add_blob(Descriptor(media_type="x/y", digest="sha256:" + "1" * 64, size=len(data)), io.BytesIO(data))
    with pytest.raises(FailedPrecondition):
        writer.add_bytes(b"more", "x/y")
    writer.abort()


def test_writer_refuses_short_source():
    writer = ArchiveWriter(WriteOnly())
    with pytest.raises(InvalidArgument, match="writing failed"):
        writer.add_blob(Descriptor(media_type="x/y", digest=sha(b"abcdef"), size=6), io.BytesIO(b"abc"))
    writer.abort()


def test_writer_writes_a_digest_once():
    out = WriteOnly()
    writer = ArchiveWriter(out)
    first = writer.add_bytes(b"same", "x/y")

    class Unreadable:
        def read(self, n=-1):
            raise AssertionError("a known digest must not be read again")

    writer.add_blob(first, Unreadable())
    writer.close()
    with tarfile.open(fileobj=io.BytesIO(out.buf.getvalue())) as tar:
        assert tar.getnames().count("blobs/sha256/" + first.digest.split(":")[1]) == 1
    with pytest.raises(FailedPrecondition):
        writer.add_image("a:b", first)


_GOOD = None


def _good_archives():
    global _GOOD
    if _GOOD is None:
        img = Image("amd64", {"x": b"x"})
        oci_tar = write_archive(img.blobs, [("x:1", img.manifest)])
        _GOOD = [oci_tar, gz(oci_tar), docker_save()[0]]
    return _GOOD


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8), st.booleans())
def test_damaged_archives_raise_only_typed_errors(which, position, junk, truncate):
    base = _good_archives()[which]
    position %= len(base)
    data = base[:position] if truncate else base[:position] + junk + base[position + len(junk):]
    try:
        read_archive(io.BytesIO(data), Collector(), base_name="", all_platforms=True)
    except (InvalidArgument, NotFound):
        pass


def test_callback_errors_propagate_unchanged():
    img = Image("amd64", {"x": b"x"})

    def failing(key, size, fileobj):
        fileobj.read(1)
        raise ValueError("store is full")

    with pytest.raises(ValueError, match="store is full"):
        read_archive(io.BytesIO(write_archive(img.blobs, [("x:1", img.manifest)])), failing, base_name="")
