"""oci.imagecheck: manifests per platform, walks, sizes, platforms, check (pure, no daemon)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oci import imagecheck, mediatypes as mt, platforms
from oci.descriptor import Descriptor, Platform
from oci.identity import chain_id
from tests.transfer.image_builder import TestImage, dump, layer, sha
from wire import errdefs


def index_of(*images: TestImage, with_platform: bool = True) -> tuple[Descriptor, dict[str, bytes]]:
    blobs: dict[str, bytes] = {}
    entries = []
    for image in images:
        blobs.update(image.blobs)
        entry = image.manifest.to_json()
        if not with_platform:
            entry.pop("platform", None)
        entries.append(entry)
    data = dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
    blobs[sha(data)] = data
    return Descriptor(media_type=mt.OCI_INDEX, digest=sha(data), size=len(data)), blobs


def reader(blobs: dict[str, bytes]):
    reads: list[str] = []

    def read(desc: Descriptor) -> bytes:
        reads.append(desc.digest)
        if desc.digest not in blobs:
            raise errdefs.NotFound(f"content {desc.digest}: not found")
        return blobs[desc.digest]

    read.reads = reads
    return read


AMD = TestImage([layer([("a", b"amd")])], arch="amd64")
ARM = TestImage([layer([("a", b"arm")]), layer([("b", b"arm2")])], arch="arm64")


@pytest.mark.parametrize("with_platform", [True, False])
def test_manifest_for_picks_the_platform(with_platform):
    target, blobs = index_of(ARM, AMD, with_platform=with_platform)
    read = reader(blobs)
    amd = platforms.only(Platform(os="linux", architecture="amd64"))
    arm = platforms.only(Platform(os="linux", architecture="arm64"))
    assert imagecheck.manifest_for(target, amd, read).digest == AMD.manifest.digest
    assert imagecheck.manifest_for(target, arm, read).digest == ARM.manifest.digest
    with pytest.raises(errdefs.NotFound, match="s390x"):
        imagecheck.manifest_for(target, platforms.only(Platform(os="linux", architecture="s390x")), read)
    everything = imagecheck.manifests_for(target, platforms.all_platforms(), read)
    assert [d.digest for d in everything] == [ARM.manifest.digest, AMD.manifest.digest]


def test_walk_and_size_follow_the_matcher():
    target, blobs = index_of(ARM, AMD)
    read = reader(blobs)
    amd = platforms.only(Platform(os="linux", architecture="amd64"))
    walked = imagecheck.walk(target, amd, read)
    assert [d.digest for d in walked] == [target.digest, AMD.manifest.digest, AMD.config.digest,
                                          AMD.layers[0].digest]
    assert imagecheck.size(target, amd, read) == sum(d.size for d in walked)
    everything = imagecheck.walk(target, platforms.all_platforms(), read)
    assert {d.digest for d in everything} == set(blobs)
    assert AMD.layers[0].digest not in read.reads  # leaves are never read


def test_platforms_of_index_and_manifest():
    target, blobs = index_of(ARM, AMD, with_platform=False)
    read = reader(blobs)
    assert [platforms.format(p) for p in imagecheck.image_platforms(target, read)] == ["linux/arm64", "linux/amd64"]
    bare = Descriptor(media_type=AMD.manifest.media_type, digest=AMD.manifest.digest, size=AMD.manifest.size)
    assert [platforms.format(p) for p in imagecheck.image_platforms(bare, read)] == ["linux/amd64"]


def test_check_complete_missing_and_unavailable():
    target, blobs = index_of(AMD)
    amd = platforms.only(Platform(os="linux", architecture="amd64"))
    present = set(blobs)
    result = imagecheck.check(target, amd, reader(blobs), lambda d: d.digest in present)
    assert result.complete and result.required_size == AMD.config.size + AMD.layers[0].size
    present.discard(AMD.layers[0].digest)
    result = imagecheck.check(target, amd, reader(blobs), lambda d: d.digest in present)
    assert not result.complete and [d.digest for d in result.missing] == [AMD.layers[0].digest]
    assert result.present_size == AMD.config.size
    del blobs[AMD.manifest.digest]
    result = imagecheck.check(target, amd, reader(blobs), lambda d: True)
    assert not result.available and result.missing == (target,)


def test_rootfs_chain_and_layer_count_mismatch():
    fs = imagecheck.rootfs(ARM.manifest, reader(ARM.blobs))
    assert fs.diff_ids == tuple(ARM.diff_ids) and fs.chain_id == chain_id(ARM.diff_ids)
    config = json.loads(ARM.config_bytes)
    config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:1]
    bad_config = dump(config)
    manifest = json.loads(ARM.manifest_bytes)
    manifest["config"]["digest"], manifest["config"]["size"] = sha(bad_config), len(bad_config)
    bad_manifest = dump(manifest)
    blobs = {sha(bad_config): bad_config, sha(bad_manifest): bad_manifest}
    desc = Descriptor(media_type=mt.OCI_MANIFEST, digest=sha(bad_manifest), size=len(bad_manifest))
    with pytest.raises(errdefs.InvalidArgument, match="2 layers but 1 diff ids"):
        imagecheck.rootfs(desc, reader(blobs))


def test_schema1_is_refused():
    desc = Descriptor(media_type=mt.DOCKER_SCHEMA1_SIGNED, digest=sha(b"x"), size=1)
    with pytest.raises(errdefs.InvalidArgument, match="schema 1"):
        imagecheck.manifests_for(desc, platforms.all_platforms(), reader({}))


def test_nested_index_depth_is_bounded():
    target, blobs = index_of(AMD)
    for _ in range(10):
        data = dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [target.to_json()]})
        blobs[sha(data)] = data
        target = Descriptor(media_type=mt.OCI_INDEX, digest=sha(data), size=len(data))
    with pytest.raises(errdefs.InvalidArgument, match="nested"):
        imagecheck.walk(target, platforms.all_platforms(), reader(blobs))


@pytest.mark.parametrize("n, text", [(0, "0.0 B"), (512, "512.0 B"), (1536, "1.5 KiB"),
                                     (52_428_800, "50.0 MiB"), (3 << 30, "3.0 GiB")])
def test_format_bytes(n, text):
    assert imagecheck.format_bytes(n) == text


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=0, max_value=1 << 60))
def test_format_bytes_shape(n):
    value, unit = imagecheck.format_bytes(n).split()
    assert unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    assert float(value) <= 1024 or unit == "EiB"
