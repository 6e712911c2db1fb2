"""Transfer.Import / Transfer.Export against a real daemon (content only, no unpack)."""

from __future__ import annotations

import json

import pytest

from oci import mediatypes as mt
from oci.identity import LABEL_GC_REF_CONTENT_CONFIG
from tests.transfer.image_builder import TestImage, chunks, docker_archive, layer, oci_archive, read_layout
from wire import errdefs


def import_archive(daemon, data: bytes, **params):
    params.setdefault("unpack", False)
    with daemon.client() as c:
        return c.upload("Transfer.Import", params, chunks(data))


def export(daemon, **params) -> bytes:
    with daemon.client() as c:
        return b"".join(c.stream("Transfer.Export", params))


def content_labels(daemon, digest):
    return daemon.call("Content.Info", {"digest": digest})["info"]["labels"]


@pytest.fixture
def image():
    return TestImage([layer([("etc", "dir"), ("etc/hello", b"hi\n")]), layer([("etc/two", b"2")])])


def test_import_oci_layout_creates_images_and_labels(daemon, image):
    result = import_archive(daemon, oci_archive({"docker.io/library/t:1": image}))
    assert [i["name"] for i in result["images"]] == ["docker.io/library/t:1"]
    assert result["images"][0]["target"]["digest"] == image.manifest.digest
    got = daemon.call("Images.Get", {"name": "docker.io/library/t:1"})["image"]
    assert got["target"]["media_type"] == mt.OCI_MANIFEST
    labels = content_labels(daemon, image.manifest.digest)
    assert labels[LABEL_GC_REF_CONTENT_CONFIG] == image.config.digest
    assert labels["containerd.io/gc.ref.content.l.0"] == image.layers[0].digest
    assert labels["containerd.io/gc.ref.content.l.1"] == image.layers[1].digest
    for digest, data in image.blobs.items():
        assert daemon.call("Content.Info", {"digest": digest})["info"]["size"] == len(data)
    # nothing is left behind under a temporary lease or as an ingest
    assert daemon.call("Content.ListStatuses", {})["statuses"] == []


def test_import_docker_save_names_and_base_name(daemon):
    image = TestImage([layer([("a", b"a")])], compress=False, docker=True)
    result = import_archive(daemon, docker_archive(["busybox:latest"], image), base_name="")
    assert [i["name"] for i in result["images"]] == ["docker.io/library/busybox:latest"]
    result = import_archive(daemon, docker_archive(["busybox:latest"], image), index_name="my/index",
                            digests=True, base_name="docker.io/library/busybox")
    names = sorted(i["name"] for i in result["images"])
    assert "my/index" in names and any("@sha256:" in n for n in names)


def test_import_updates_an_existing_name(daemon, image):
    other = TestImage([layer([("x", b"x")])])
    import_archive(daemon, oci_archive({"docker.io/library/t:1": image}))
    import_archive(daemon, oci_archive({"docker.io/library/t:1": other}))
    assert daemon.call("Images.Get", {"name": "docker.io/library/t:1"})["image"]["target"]["digest"] == other.manifest.digest


def test_import_missing_blob_names_it(daemon, image):
    with pytest.raises(errdefs.NotFound, match=image.layers[1].digest):
        import_archive(daemon, oci_archive({"docker.io/library/t:1": image}, skip={image.layers[1].digest}))
    assert daemon.call("Images.List", {}) == {"images": []}


def test_import_garbage_is_invalid(daemon):
    with pytest.raises(errdefs.InvalidArgument):
        import_archive(daemon, b"not a tar at all" * 1000)


def test_round_trip_import_export_import(daemon, make_daemon, image):
    import_archive(daemon, oci_archive({"docker.io/library/t:1": image}, gzip_outer=True))
    tar = export(daemon, names=["docker.io/library/t:1"])
    members = read_layout(tar)
    assert json.loads(members["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for digest, data in image.blobs.items():
        assert members["blobs/sha256/" + digest.split(":")[1]] == data
    index = json.loads(members["index.json"])
    assert index["manifests"][0]["digest"] == image.manifest.digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/t:1"

    second = make_daemon("second").start()
    result = import_archive(second, tar)
    assert [i["name"] for i in result["images"]] == ["docker.io/library/t:1"]
    assert export(second, names=["docker.io/library/t:1"]) == tar
    second.stop()


def test_export_errors(daemon, image):
    with pytest.raises(errdefs.NotFound, match="nope"):
        export(daemon, names=["nope"])
    with pytest.raises(errdefs.InvalidArgument):
        export(daemon)
    import_archive(daemon, oci_archive({"docker.io/library/t:1": image}))
    daemon.call("Content.Delete", {"digest": image.layers[0].digest})
    with pytest.raises(errdefs.NotFound, match=image.layers[0].digest):
        export(daemon, names=["docker.io/library/t:1"])


def test_deleting_the_image_lets_gc_remove_its_content(daemon, image):
    import_archive(daemon, oci_archive({"docker.io/library/t:1": image}))
    keep = TestImage([layer([("etc/two", b"2")])])  # shares nothing but is kept by its own image
    import_archive(daemon, oci_archive({"docker.io/library/keep:1": keep}))
    blobs = daemon.root / "io.dockyard.content.v1.content" / "blobs" / "sha256"
    assert all((blobs / d.split(":")[1]).exists() for d in image.blobs)
    daemon.call("Images.Delete", {"name": "docker.io/library/t:1", "sync": True})
    for digest in image.blobs:
        if digest in keep.blobs:
            continue
        with pytest.raises(errdefs.NotFound):
            daemon.call("Content.Info", {"digest": digest})
        assert not (blobs / digest.split(":")[1]).exists()
    for digest in keep.blobs:
        assert daemon.call("Content.Info", {"digest": digest})["info"]["digest"] == digest


def multi_platform_archive(name: str, *images: TestImage) -> tuple[bytes, str]:
    """An OCI layout whose one entry is an index over ``images`` (one platform each)."""
    import io
    import tarfile

    from tests.transfer.image_builder import dump, sha

    index = dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                  "manifests": [i.manifest.to_json() for i in images]})
    blobs = {sha(index): index}
    for i in images:
        blobs.update(i.blobs)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(path, data):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest.split(":")[1], data)
        add("index.json", dump({"schemaVersion": 2, "manifests": [{
            "mediaType": mt.OCI_INDEX, "digest": sha(index), "size": len(index),
            "annotations": {"io.containerd.image.name": name}}]}))
    return buf.getvalue(), sha(index)


def test_platform_filters_on_import_and_export(daemon):
    amd = TestImage([layer([("amd", b"1")])], arch="amd64")
    arm = TestImage([layer([("arm", b"2")])], arch="arm64")
    data, index_digest = multi_platform_archive("docker.io/library/multi:1", amd, arm)

    result = import_archive(daemon, data)  # host platform only: the arm64 leaves are not required
    assert result["images"][0]["target"]["digest"] == index_digest
    labels = content_labels(daemon, index_digest)
    assert list(labels.values()) == [amd.manifest.digest]

    import_archive(daemon, data, all_platforms=True)
    assert sorted(content_labels(daemon, index_digest).values()) == sorted([amd.manifest.digest,
                                                                           arm.manifest.digest])

    only_arm = read_layout(export(daemon, names=["docker.io/library/multi:1"], platforms=["linux/arm64"]))
    blobs = {k.split("/")[-1] for k in only_arm if k.startswith("blobs/")}
    assert {d.split(":")[1] for d in arm.blobs} | {index_digest.split(":")[1]} == blobs
    everything = read_layout(export(daemon, names=["docker.io/library/multi:1"], all_platforms=True))
    assert len([k for k in everything if k.startswith("blobs/")]) == 1 + len(amd.blobs) + len(arm.blobs)
