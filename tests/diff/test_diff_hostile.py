"""Hostile layers are refused and never touch anything outside the root.

The ``jail`` fixture snapshots a sentinel directory beside the root and checks
after each test that it (and the root's siblings) did not change.
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from actors.diff import MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, apply_layer
from wire.errdefs import DataLoss, InvalidArgument

from diff_helpers import E, d, f, gz, hard, sym, tar_bytes, wh


def apply(data: bytes, root, media_type=MEDIA_TYPE_TAR, **kw):
    return apply_layer(io.BytesIO(data), root, media_type=media_type, **kw)


def _hostile_layers(outside: str) -> dict[str, list]:
    return {
        "dotdot name": [f("../outside/evil", b"x")],
        "dotdot deep name": [d("a"), f("a/../../outside/victim", b"x")],
        "absolute name": [f(outside + "/evil", b"x")],
        "write through relative symlink escape": [sym("esc", "../outside"), f("esc/evil", b"x")],
        "overwrite through relative symlink escape": [sym("esc", "../outside"), f("esc/victim", b"x")],
        "dir through symlink escape": [sym("esc", "../../.."), d("esc/tmp")],
        "nested symlink escape": [d("a"), sym("a/up", ".."), sym("a/up2", "up/.."),
                                  f("a/up2/outside/evil", b"x")],
        "whiteout through symlink escape": [sym("esc", "../outside"), wh("esc/.wh.victim")],
        "opaque through symlink escape": [sym("esc", "../outside"), wh("esc/.wh..wh..opq")],
        "hardlink to outside (relative)": [hard("h", "../outside/victim")],
        "hardlink to outside (absolute)": [hard("h", outside + "/victim")],
        "hardlink through escaping dir symlink": [sym("esc", "../outside"), hard("h", "esc/victim")],
        "hardlink to absolute symlink": [sym("s", outside + "/victim"), hard("h", "s")],
        "hardlink to escaping symlink": [sym("s", "../outside/victim"), hard("h", "s")],
        "whiteout of parent": [d("a"), wh("a/.wh..")],
        "whiteout of nothing": [wh(".wh.")],
        "whiteout of self": [wh("a/.wh.")],
        "symlink loop": [sym("l1", "l2"), sym("l2", "l1"), f("l1/x", b"x")],
        "file as a parent": [f("plain", b"x"), f("plain/child", b"y")],
        "unsupported type": [E(name="weird", type=b"V")],
        "hardlink to missing": [hard("h", "nope")],
        "hardlink to dir": [d("dd"), hard("h", "dd")],
    }


@pytest.mark.parametrize("case", sorted(_hostile_layers("/x")))
def test_hostile_layer_is_refused(jail, case):
    root, outside = jail
    layer = tar_bytes(_hostile_layers(str(outside))[case])
    with pytest.raises(InvalidArgument):
        apply(layer, root)
    with pytest.raises(InvalidArgument):
        apply(layer, root, overlay=True)


def test_absolute_symlink_is_rerooted_not_followed(jail):
    root, outside = jail
    apply(tar_bytes([sym("abs", str(outside)), f("abs/victim", b"inside"),
                     sym("var-run", "/run"), f("var-run/pid", b"1")]), root)
    assert (root / outside.relative_to("/") / "victim").read_bytes() == b"inside"
    assert (root / "run/pid").read_bytes() == b"1"


def test_existing_symlink_at_the_entry_is_replaced_not_followed(jail):
    root, outside = jail
    apply(tar_bytes([sym("v", str(outside / "victim")), sym("w", "../outside/victim")]), root)
    apply(tar_bytes([f("v", b"new"), f("w", b"new"), d("x"), sym("x/y", "../../outside"),
                     d("x/y")]), root)
    assert (root / "v").read_bytes() == b"new" and not (root / "v").is_symlink()
    assert (root / "x/y").is_dir() and not (root / "x/y").is_symlink()


def test_hardlink_entries_cannot_reach_outside_through_existing_symlinks(jail):
    root, outside = jail
    os.symlink(str(outside), root / "pre-existing")
    with pytest.raises(InvalidArgument):
        apply(tar_bytes([hard("h", "pre-existing/victim")]), root)


def _with_header_size(layer: bytes, index: int, size: int) -> bytes:
    """Rewrite the size field of the header block at ``index`` (and its checksum)."""
    block = bytearray(layer[index:index + 512])
    block[124:136] = b"%011o\0" % size
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return layer[:index] + bytes(block) + layer[index + 512:]


def test_oversized_pax_header_is_refused(jail):
    root, _ = jail
    layer = tar_bytes([f("a", b"x", xattrs={"user.x": b"y"})])
    assert layer[156:157] == tarfile.XHDTYPE
    with pytest.raises(InvalidArgument):
        apply(_with_header_size(layer, 0, 8 << 30), root)


def test_oversized_gnu_longname_is_refused(jail):
    root, _ = jail
    layer = tar_bytes([f("n" * 200, b"x")], fmt=tarfile.GNU_FORMAT)
    assert layer[156:157] == tarfile.GNUTYPE_LONGNAME
    with pytest.raises(InvalidArgument):
        apply(_with_header_size(layer, 0, 1 << 40), root)


def test_garbage_header_after_the_first_entry_is_refused(jail):
    root, _ = jail
    first = tar_bytes([f("a", b"x")], fmt=tarfile.USTAR_FORMAT)[:1024]
    garbage = bytes(range(256)) * 2
    with pytest.raises(InvalidArgument):
        apply(first + garbage + b"\0" * 1024, root)


def test_garbage_first_header_is_refused(jail):
    root, _ = jail
    with pytest.raises(InvalidArgument):
        apply(os.urandom(2048), root)


@pytest.mark.parametrize("cut", [700, 1024 + 100, 1024])
def test_truncated_plain_tar_is_refused(jail, cut):
    root, _ = jail
    layer = tar_bytes([f("a", os.urandom(600)), f("b", b"y")], fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(InvalidArgument):
        apply(layer[:cut], root)


def test_truncated_gzip_is_data_loss(jail):
    root, _ = jail
    blob = gz(tar_bytes([f("a", os.urandom(10_000))]))
    with pytest.raises(DataLoss):
        apply(blob[: len(blob) // 2], root, MEDIA_TYPE_TAR_GZIP)


def test_negative_size_is_refused(jail):
    root, _ = jail
    layer = bytearray(tar_bytes([f("a", b"")], fmt=tarfile.USTAR_FORMAT))
    layer[124:136] = b"\xff" * 12  # base-256: -1
    layer[148:156] = b" " * 8
    layer[148:156] = b"%06o\0 " % sum(layer[:512])
    with pytest.raises(InvalidArgument):
        apply(bytes(layer), root)
