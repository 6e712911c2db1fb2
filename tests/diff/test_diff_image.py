"""A five-layer image applied plainly and as overlay uppers (then really
mounted), checked against the tree it must produce; and each layer
re-derived with compare() / compare_overlay_upper() and re-applied."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess

import zstandard

import pytest

from actors.diff import MEDIA_TYPE_TAR, apply_layer, compare, compare_overlay_upper
from actors.diff.media import COMPRESSION_MEDIA_TYPE, Compression

from diff_helpers import (
    blkdev, chrdev, d, f, fifo, gz, hard, listing, sha, sym, tar_bytes, wh,
)

MOUNT_SOURCE = "dockyard-diff-test"

LAYERS = [
    [
        d("bin"), f("bin/sh", b"#!sh v1", mode=0o755), hard("bin/sh2", "bin/sh", mode=0o755),
        d("etc"), f("etc/passwd", b"root:x:0:0\n", xattrs={"user.origin": b"base"}),
        f("etc/shadow", b"secret", mode=0o640, gid=42), sym("etc/link", "passwd"),
        d("usr"), d("usr/bin"), f("usr/bin/passwd", b"suid", mode=0o4755),
        f("usr/bin/wall", b"sgid", mode=0o2755, gid=5),
        d("usr/lib"), f("usr/lib/libx.so.1", b"libx"), sym("usr/lib/libx.so", "libx.so.1"),
        d("var"), d("var/cache"), f("var/cache/a", b"a"), d("var/cache/sub"), f("var/cache/sub/c", b"c"),
        d("data", mode=0o700, uid=1000, gid=1000, xattrs={"trusted.owner": b"app"}),
        f("data/db", b"db", uid=1000, gid=1000),
        d("tmp", mode=0o1777),
        d("dev"), chrdev("dev/null", 1, 3), blkdev("dev/loop0", 7, 0), fifo("dev/initctl", mode=0o600),
        d("replace_me_dir"), f("replace_me_dir/child", b"c"),
        f("becomes_dir", b"file"), sym("sym_to_file", "etc/passwd"),
    ],
    [
        wh("etc/.wh.shadow"),
        f("etc/passwd", b"root:x:0:0\nuser:x:1000:1000\n", xattrs={"user.origin": b"layer2"}),
        f("replace_me_dir", b"now a file"),
        d("becomes_dir", mode=0o750), f("becomes_dir/inner", b"inner"), f("becomes_dir/other", b"o"),
        f("sym_to_file", b"regular now"),
        d("var/cache"), wh("var/cache/.wh..wh..opq"), f("var/cache/new", b"fresh"),
    ],
    [
        d("usr/bin"), f("usr/bin/tool", b"tool", mode=0o755),
        hard("usr/bin/tool-link", "usr/bin/tool", mode=0o755),
        wh(".wh.data"),
        d("run"), fifo("run/ctl", mode=0o620, uid=7, gid=8), chrdev("dev/zero", 1, 5),
    ],
    [
        f("data", b"data is a file now", mode=0o600, uid=1000, gid=1000),
        f("bin/sh", b"#!sh v2", mode=0o4750, gid=10),
        f("usr/bin/tool", b"tool v2", mode=0o755, uid=1234, gid=5678),
    ],
    [
        d("usr/lib"), wh("usr/lib/.wh..wh..opq"), f("usr/lib/libnew.so", b"new"),
        wh("becomes_dir/.wh.inner"),
        f("etc/motd", b"hello", xattrs={"user.bin": b"\x00\x01\xfe\xff"}),
        sym("etc/link", "motd"),
    ],
]


def F(data: bytes, mode=0o644, uid=0, gid=0, xattrs=()):
    return ("file", oct(mode), uid, gid, len(data), hashlib.sha256(data).hexdigest()[:16], None, None,
            tuple(sorted(xattrs)))


def D(mode=0o755, uid=0, gid=0, xattrs=()):
    return ("dir", oct(mode), uid, gid, None, None, None, None, tuple(sorted(xattrs)))


def L(target):
    return ("symlink", "0o777", 0, 0, None, None, target, None, ())


def DEV(kind, major, minor, mode):
    return (kind, oct(mode), 0, 0, None, None, None, (major, minor), ())


def FIFO(mode, uid=0, gid=0):
    return ("fifo", oct(mode), uid, gid, None, None, None, None, ())


EXPECTED = {
    "bin": D(), "bin/sh": F(b"#!sh v2", 0o4750, gid=10), "bin/sh2": F(b"#!sh v1", 0o755),
    "etc": D(), "etc/passwd": F(b"root:x:0:0\nuser:x:1000:1000\n", xattrs=[("user.origin", b"layer2")]),
    "etc/link": L("motd"), "etc/motd": F(b"hello", xattrs=[("user.bin", b"\x00\x01\xfe\xff")]),
    "usr": D(), "usr/bin": D(), "usr/bin/passwd": F(b"suid", 0o4755),
    "usr/bin/wall": F(b"sgid", 0o2755, gid=5), "usr/bin/tool": F(b"tool v2", 0o755, 1234, 5678),
    "usr/bin/tool-link": F(b"tool", 0o755),
    "usr/lib": D(), "usr/lib/libnew.so": F(b"new"),
    "var": D(), "var/cache": D(), "var/cache/new": F(b"fresh"),
    "data": F(b"data is a file now", 0o600, 1000, 1000),
    "tmp": D(0o1777),
    "dev": D(), "dev/null": DEV("chr", 1, 3, 0o666), "dev/loop0": DEV("blk", 7, 0, 0o660),
    "dev/initctl": FIFO(0o600), "dev/zero": DEV("chr", 1, 5, 0o666),
    "replace_me_dir": F(b"now a file"),
    "becomes_dir": D(0o750), "becomes_dir/other": F(b"o"),
    "sym_to_file": F(b"regular now"),
    "run": D(), "run/ctl": FIFO(0o620, 7, 8),
}


def _apply_plain(root, count: int):
    root.mkdir()
    for layer in LAYERS[:count]:
        data = tar_bytes(layer)
        assert apply_layer(io.BytesIO(data), root, media_type=MEDIA_TYPE_TAR).digest == sha(data)
    return root


def _apply_overlay(tmp_path) -> list[str]:
    uppers: list[str] = []
    for i, layer in enumerate(LAYERS):
        upper = tmp_path / f"upper{i + 1}"
        upper.mkdir()
        data = gz(tar_bytes(layer))
        apply_layer(io.BytesIO(data), upper, media_type="application/vnd.oci.image.layer.v1.tar+gzip",
                    overlay=True, lowers=list(reversed(uppers)))
        uppers.append(str(upper))
    return uppers


def test_plain_apply_of_five_layers_gives_the_expected_tree(tmp_path):
    assert listing(_apply_plain(tmp_path / "plain", 5)) == EXPECTED
    tool = tmp_path / "plain/usr/bin"
    assert os.lstat(tool / "tool").st_ino != os.lstat(tool / "tool-link").st_ino


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for overlay mounts")
def test_overlay_apply_of_five_layers_mounts_as_the_expected_tree(tmp_path):
    uppers = _apply_overlay(tmp_path)
    upper3 = listing(uppers[2])
    assert upper3["data"][0] == "chr" and upper3["data"][7] == (0, 0)
    assert os.getxattr(os.path.join(uppers[1], "var/cache"), "trusted.overlay.opaque") == b"y"
    assert not any(".wh." in p for u in uppers for p in listing(u))
    merged = tmp_path / "merged"
    merged.mkdir()
    lowerdir = ":".join(reversed(uppers))
    subprocess.run(["mount", "-t", "overlay", MOUNT_SOURCE, "-o", f"lowerdir={lowerdir}", str(merged)],
                   check=True)
    try:
        assert listing(merged) == EXPECTED
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_compare_of_each_layer_reapplies_to_the_same_tree(tmp_path, compression):
    for n in range(2, 6):
        lower = _apply_plain(tmp_path / f"lower{n}", n - 1)
        upper = _apply_plain(tmp_path / f"upper{n}", n)
        out = io.BytesIO()
        result = compare(lower, upper, out, compression=compression)
        blob = out.getvalue()
        assert result.digest == sha(blob) and result.size == len(blob)
        assert result.media_type == COMPRESSION_MEDIA_TYPE[Compression(compression)]
        target = _apply_plain(tmp_path / f"target{n}", n - 1)
        applied = apply_layer(io.BytesIO(blob), target, media_type=result.media_type)
        assert applied.digest == result.diff_id
        assert listing(target) == listing(upper), f"layer {n}"
        if n == 3:
            bin_dir = target / "usr/bin"
            assert os.lstat(bin_dir / "tool").st_ino == os.lstat(bin_dir / "tool-link").st_ino


def test_compare_diff_id_is_sha256_of_the_uncompressed_tar(tmp_path):
    lower = _apply_plain(tmp_path / "lower", 1)
    upper = _apply_plain(tmp_path / "upper", 3)
    decoders = {
        "gzip": gzip.decompress,
        "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
        "none": lambda b: b,
    }
    for compression, decode in decoders.items():
        out = io.BytesIO()
        result = compare(lower, upper, out, compression=compression)
        blob = out.getvalue()
        raw = decode(blob)
        assert result.diff_id == sha(raw) and result.digest == sha(blob)


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts need root")
def test_compare_overlay_upper_reapplies_to_the_same_tree(tmp_path):
    uppers = _apply_overlay(tmp_path)
    for n in range(2, 6):
        out = io.BytesIO()
        result = compare_overlay_upper(uppers[n - 1], list(reversed(uppers[: n - 1])), out)
        target = _apply_plain(tmp_path / f"target{n}", n - 1)
        applied = apply_layer(io.BytesIO(out.getvalue()), target, media_type=result.media_type)
        assert applied.digest == result.diff_id
        assert listing(target) == listing(_apply_plain(tmp_path / f"want{n}", n)), f"layer {n}"
