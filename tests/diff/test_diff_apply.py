"""apply_layer: entry types, metadata, whiteouts, compression and DiffID."""

from __future__ import annotations

import io
import os
import stat

import pytest

from actors.diff import MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD, apply_layer
from wire.errdefs import DataLoss, InvalidArgument, NotImplemented_

from diff_helpers import (
    MTIME, E, blkdev, chrdev, d, describe, f, fifo, gz, hard, listing, sha, sym, tar_bytes, wh, zst,
)

DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def apply(data: bytes, root, media_type=MEDIA_TYPE_TAR, **kw):
    return apply_layer(io.BytesIO(data), root, media_type=media_type, **kw)


def test_every_entry_type_and_its_metadata(tmp_path):
    layer = tar_bytes([
        d("etc", mode=0o750, uid=7, gid=8),
        f("etc/passwd", b"root:x:0:0\n", mode=0o4755, uid=1000, gid=1001,
          xattrs={"user.note": b"\x00\xffbinary", "trusted.tag": b"t"}),
        sym("etc/link", "../nowhere/at/all"),
        hard("etc/passwd2", "etc/passwd"),
        chrdev("null", 1, 3),
        blkdev("loop0", 7, 0),
        fifo("pipe", mode=0o600, uid=5, gid=6),
        d("sticky", mode=0o1777),
        f("sgid", b"x", mode=0o2711),
    ])
    result = apply(layer, tmp_path)
    assert result.digest == sha(layer) and result.size == len(layer)
    assert result.media_type == MEDIA_TYPE_TAR
    tree = listing(tmp_path)
    assert tree["etc"][:4] == ("dir", "0o750", 7, 8)
    passwd = tree["etc/passwd"]
    assert passwd[:5] == ("file", "0o4755", 1000, 1001, 11)
    assert dict(passwd[8]) == {"user.note": b"\x00\xffbinary", "trusted.tag": b"t"}
    assert tree["etc/link"][0] == "symlink" and tree["etc/link"][6] == "../nowhere/at/all"
    assert os.lstat(tmp_path / "etc/passwd").st_ino == os.lstat(tmp_path / "etc/passwd2").st_ino
    assert tree["null"][0] == "chr" and tree["null"][7] == (1, 3) and tree["null"][1] == "0o666"
    assert tree["loop0"][0] == "blk" and tree["loop0"][7] == (7, 0)
    assert tree["pipe"][:4] == ("fifo", "0o600", 5, 6)
    assert tree["sticky"][1] == "0o1777"
    assert tree["sgid"][1] == "0o2711"
    assert os.lstat(tmp_path / "etc/passwd").st_mtime_ns == MTIME * 10**9
    assert os.lstat(tmp_path / "etc").st_mtime_ns == MTIME * 10**9  # re-applied at the end


def test_directory_times_survive_later_children_and_atime_is_at_least_mtime(tmp_path):
    layer = tar_bytes([d("a", mtime=1000), f("a/one", b"1", mtime=2000), d("a/b", mtime=3000),
                       f("a/b/two", b"2", mtime=4000)])
    apply(layer, tmp_path)
    assert os.lstat(tmp_path / "a").st_mtime == 1000
    assert os.lstat(tmp_path / "a/b").st_mtime == 3000
    st = os.lstat(tmp_path / "a/one")
    assert st.st_atime >= st.st_mtime == 2000


def test_missing_parents_are_created_and_root_entry_skipped(tmp_path):
    os.chmod(tmp_path, 0o711)
    apply(tar_bytes([d(".", mode=0o700), d("./", mode=0o700), f("x/y/z", b"deep")]), tmp_path)
    assert stat.S_IMODE(os.lstat(tmp_path).st_mode) == 0o711
    assert (tmp_path / "x/y/z").read_bytes() == b"deep"
    assert stat.S_IMODE(os.lstat(tmp_path / "x").st_mode) == 0o755


def test_replacements_and_dir_merge(tmp_path):
    apply(tar_bytes([d("dir"), f("dir/keep", b"k"), f("file", b"f"), sym("link", "file"),
                     d("merge", mode=0o700), f("merge/old", b"o")]), tmp_path)
    apply(tar_bytes([f("dir", b"now a file"), d("file"), f("file/inner", b"i"),
                     f("link", b"was a link"), d("merge", mode=0o755), f("merge/new", b"n")]), tmp_path)
    tree = listing(tmp_path)
    assert tree["dir"][0] == "file" and "dir/keep" not in tree
    assert tree["file"][0] == "dir" and tree["file/inner"][0] == "file"
    assert tree["link"][0] == "file"
    assert tree["merge"][1] == "0o755" and {"merge/old", "merge/new"} <= set(tree)


def test_plain_whiteouts_delete_and_opaque_keeps_this_layers_entries(tmp_path):
    apply(tar_bytes([d("a"), f("a/x"), d("a/sub"), f("a/sub/y"), f("gone"), d("gonedir"),
                     f("gonedir/z"), d("o"), f("o/old1"), d("o/olddir"), f("o/olddir/deep")]), tmp_path)
    apply(tar_bytes([f("o/new-before", b"n"), d("o/olddir"), f("o/olddir/fresh", b"f"),
                     wh("o/.wh..wh..opq"), f("o/new-after", b"m"),
                     wh(".wh.gone"), wh(".wh.gonedir"), wh("a/sub/.wh.y"), wh(".wh.never-was"),
                     wh("a/.wh..wh.plnk")]), tmp_path)
    tree = listing(tmp_path)
    assert set(tree) == {"a", "a/x", "a/sub", "o", "o/new-before", "o/olddir", "o/olddir/fresh",
                         "o/new-after"}
    assert not any(".wh." in p for p in tree)


def test_overlay_whiteouts_become_devices_and_xattrs(tmp_path):
    apply(tar_bytes([d("o"), wh("o/.wh..wh..opq"), f("o/kept", b"k"),
                     E(name=".wh.gone", uid=12, gid=34, mode=0)]), tmp_path, overlay=True)
    tree = listing(tmp_path)
    assert set(tree) == {"o", "o/kept", "gone"}
    assert os.getxattr(tmp_path / "o", "trusted.overlay.opaque") == b"y"
    assert tree["gone"][0] == "chr" and tree["gone"][7] == (0, 0)
    assert tree["gone"][2:4] == (12, 34)


def test_overlay_implicit_parents_copy_metadata_from_first_lower(tmp_path):
    lower_near, lower_far, upper = (tmp_path / n for n in ("near", "far", "upper"))
    for p in (lower_near, lower_far, upper):
        p.mkdir()
    apply(tar_bytes([d("usr", mode=0o750, uid=3, gid=4, mtime=5000,
                       xattrs={"user.from": b"far", "trusted.overlay.opaque": b"y"}),
                     d("usr/lib", mode=0o700, uid=9, gid=9, mtime=6000)]), lower_far)
    apply(tar_bytes([d("usr", mode=0o751, uid=1, gid=2, mtime=7000)]), lower_near)
    apply(tar_bytes([f("usr/lib/libc.so", b"c")]), upper, overlay=True,
          lowers=[str(lower_near), str(lower_far)])
    usr, lib = os.lstat(upper / "usr"), os.lstat(upper / "usr/lib")
    assert (stat.S_IMODE(usr.st_mode), usr.st_uid, usr.st_gid, usr.st_mtime) == (0o751, 1, 2, 7000)
    assert (stat.S_IMODE(lib.st_mode), lib.st_uid, lib.st_gid, lib.st_mtime) == (0o700, 9, 9, 6000)
    assert os.listxattr(upper / "usr") == []  # near lower had no xattrs
    (tmp_path / "upper2").mkdir()
    apply(tar_bytes([f("usr/x")]), tmp_path / "upper2", overlay=True, lowers=[str(lower_far)])
    # the far lower's opaque flag is its own; user xattrs are copied
    assert os.listxattr(tmp_path / "upper2/usr") == ["user.from"]


@pytest.mark.parametrize("media_type, encode", [
    (MEDIA_TYPE_TAR, lambda b: b),
    (MEDIA_TYPE_TAR_GZIP, gz),
    (MEDIA_TYPE_TAR_ZSTD, zst),
    (DOCKER_GZIP, gz),
    ("application/vnd.docker.image.rootfs.diff.tar", lambda b: b),
    ("application/vnd.docker.image.rootfs.diff.tar.zstd", zst),
    ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", gz),
    (MEDIA_TYPE_TAR, gz),   # sniffed
    (MEDIA_TYPE_TAR, zst),  # sniffed
])
def test_diff_id_is_sha256_of_the_uncompressed_tar(tmp_path, media_type, encode):
    layer = tar_bytes([f("a", os.urandom(100_000)), d("b"), f("b/c", b"\0" * 300_000)])
    blob = encode(layer)
    source = io.BytesIO(blob)
    result = apply_layer(source, tmp_path, media_type=media_type)
    assert result.digest == sha(layer) and result.size == len(layer)
    assert source.tell() == len(blob), "the blob must be drained to its end"
    assert (tmp_path / "b/c").stat().st_size == 300_000


def test_trailing_padding_counts_in_the_diff_id(tmp_path):
    layer = tar_bytes([f("a", b"x")]) + b"\0" * 4096
    assert apply(layer, tmp_path).digest == sha(layer)


def test_concatenated_gzip_members_and_zstd_frames(tmp_path):
    layer = tar_bytes([f("a", os.urandom(5000)), f("b", b"bb")])
    half = len(layer) // 2
    for name, encode, media_type in (("g", gz, MEDIA_TYPE_TAR_GZIP), ("z", zst, MEDIA_TYPE_TAR_ZSTD)):
        (tmp_path / name).mkdir()
        blob = encode(layer[:half]) + encode(layer[half:])
        assert apply(blob, tmp_path / name, media_type).digest == sha(layer)
        assert (tmp_path / name / "b").read_bytes() == b"bb"


def test_empty_stream_is_an_empty_layer(tmp_path):
    assert apply(b"", tmp_path).size == 0
    assert apply(gz(b""), tmp_path, MEDIA_TYPE_TAR_GZIP).digest == sha(b"")


def test_unknown_media_type_is_not_implemented(tmp_path):
    with pytest.raises(NotImplemented_):
        apply(tar_bytes([f("a")]), tmp_path, "application/vnd.oci.image.layer.v1.tar+encrypted")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("encode, media_type", [(gz, MEDIA_TYPE_TAR_GZIP), (zst, MEDIA_TYPE_TAR_ZSTD)])
def test_truncated_or_corrupt_compression_is_data_loss(tmp_path, encode, media_type):
    blob = encode(tar_bytes([f("a", os.urandom(50_000))]))
    with pytest.raises(DataLoss):
        apply(blob[:-20], tmp_path, media_type)
    corrupt = bytearray(blob)
    corrupt[len(blob) // 2] ^= 0xFF
    with pytest.raises((DataLoss, InvalidArgument)):
        apply(bytes(corrupt), tmp_path, media_type)
    with pytest.raises(DataLoss):
        apply(blob + b"trailing garbage", tmp_path, media_type)


def test_hardlink_to_a_symlink_inside_the_root_links_the_symlink(tmp_path):
    apply(tar_bytes([f("t", b"x"), sym("s", "t"), hard("h", "s")]), tmp_path)
    assert os.path.islink(tmp_path / "h") and os.readlink(tmp_path / "h") == "t"


def test_describe_sees_what_apply_wrote(tmp_path):
    apply(tar_bytes([f("x", b"abc", mode=0o600, uid=1, gid=2)]), tmp_path)
    assert describe(str(tmp_path / "x"))[:5] == ("file", "0o600", 1, 2, 3)
