"""Apply and compare on mounts: which path is taken, and that the paths agree."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from actors.diff import MEDIA_TYPE_TAR
from actors.diff.compare import compare
from actors.diff.media import Compression
from actors.diff.mounted import (
    apply_to_mounts, compare_mounts, overlay_layers, readonly, stacked_dirs, writable_dir,
)
from actors.mount import Mount, mounts_under
from actors.snapshots import OverlaySnapshotter
from tests.diff.diff_helpers import d, f, tar_bytes
from wire.errdefs import DockyardError

OV = Mount(type="overlay", source="overlay",
           options=("index=off", "workdir=/s/3/work", "upperdir=/s/3/fs", "lowerdir=/s/2/fs:/s/1/fs"))


def test_overlay_layers_and_stacks():
    assert overlay_layers([OV]) is not None
    assert overlay_layers([OV]).upper == "/s/3/fs"
    assert overlay_layers([OV]).lowers == ("/s/2/fs", "/s/1/fs")
    view = Mount(type="overlay", source="overlay", options=("lowerdir=/s/2/fs:/s/1/fs",))
    assert overlay_layers([view]) is None
    assert stacked_dirs([view]) == ("/s/2/fs", "/s/1/fs")
    assert stacked_dirs([]) == ()
    assert stacked_dirs([Mount(type="bind", source="/s/1/fs", options=("ro", "rbind"))]) == ("/s/1/fs",)
    assert stacked_dirs([OV]) is None
    assert writable_dir([Mount(type="bind", source="/x", options=("rw", "rbind"))]) == "/x"
    assert writable_dir([Mount(type="bind", source="/x", options=("ro", "rbind"))]) is None
    assert writable_dir([OV]) is None


def test_readonly_overlay_shows_its_upper_as_top_lower():
    (ro,) = readonly([OV])
    assert ro.options == ("index=off", "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs", "ro")
    (bind,) = readonly([Mount(type="bind", source="/x", options=("rw", "rbind"))])
    assert bind.options == ("rbind", "ro")


def _names_and_data(blob: bytes) -> list[tuple]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return [(m.name, m.type, tar.extractfile(m).read() if m.isfile() else b"") for m in tar]


def test_overlay_upper_and_mounted_compare_agree(tmp_path):
    sn = OverlaySnapshotter(str(tmp_path / "sn"))
    mount_dir = str(tmp_path / "mnt")
    os.mkdir(mount_dir)
    try:
        base = sn.prepare("base-a")
        apply_to_mounts(io.BytesIO(tar_bytes([d("etc"), f("etc/a", b"1"), f("etc/gone", b"g"), d("opq"),
                                              f("opq/old", b"o")])), MEDIA_TYPE_TAR, base, mount_dir)
        sn.commit("base", "base-a")
        upper = sn.prepare("top", "base")
        layer = tar_bytes([d("etc"), f("etc/a", b"2"), f("etc/.wh.gone"), d("opq"), f("opq/.wh..wh..opq"),
                           f("opq/new", b"n")])
        apply_to_mounts(io.BytesIO(layer), MEDIA_TYPE_TAR, upper, mount_dir)
        lower = sn.view("lower", "base")
        fast, slow = io.BytesIO(), io.BytesIO()
        compare_mounts(lower, upper, fast, compression=Compression.NONE, mount_dir=mount_dir)
        compare_mounts(lower, readonly(upper), slow, compression=Compression.NONE, mount_dir=mount_dir)
        fast_entries = _names_and_data(fast.getvalue())
        assert ("etc/a", tarfile.REGTYPE, b"2") in fast_entries
        assert ("etc/.wh.gone", tarfile.REGTYPE, b"") in fast_entries
        assert ("opq/new", tarfile.REGTYPE, b"n") in fast_entries
        # the mounted walk sees the opaque dir as "old deleted", the upper walk as an opaque marker
        slow_entries = _names_and_data(slow.getvalue())
        assert {e for e in slow_entries if "opq" not in e[0]} == {e for e in fast_entries if "opq" not in e[0]}
        assert ("opq/.wh.old", tarfile.REGTYPE, b"") in slow_entries
        assert ("opq/.wh..wh..opq", tarfile.REGTYPE, b"") in fast_entries
        assert not os.listdir(mount_dir)
    finally:
        sn.close()
    assert not mounts_under(str(tmp_path))


def test_apply_onto_a_read_only_mount_fails_and_unmounts(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    mount_dir = tmp_path / "mnt"
    mount_dir.mkdir()
    with pytest.raises(DockyardError):
        apply_to_mounts(io.BytesIO(tar_bytes([f("x", b"1")])), MEDIA_TYPE_TAR,
                        [Mount(type="bind", source=str(target), options=("ro", "rbind"))], str(mount_dir))
    assert os.listdir(target) == []
    assert os.listdir(mount_dir) == []
    assert not mounts_under(str(tmp_path))


def test_regression_same_size_same_second_different_content_is_a_change(tmp_path):
    """compare took files with equal whole-second mtimes (as tars leave them) for unchanged."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for root, data in ((lower, b"a1"), (upper, b"a2")):
        root.mkdir()
        (root / "a").write_bytes(data)
        os.utime(root / "a", ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))
    out = io.BytesIO()
    compare(lower, upper, out, compression="none")
    assert ("a", tarfile.REGTYPE, b"a2") in _names_and_data(out.getvalue())
