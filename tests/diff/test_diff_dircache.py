"""The extractor's cache of parent directory fds: entries that reshape the tree
mid-stream (a cached directory replaced by a symlink, a symlinked parent's
target removed) must resolve exactly as a fresh walk from the root would."""

from __future__ import annotations

import io
import os

import pytest

from actors.diff import MEDIA_TYPE_TAR, apply_layer
from actors.diff.dircache import DirCache
from actors.diff.saferoot import open_root
from wire.errdefs import InvalidArgument

from diff_helpers import d, f, sym, tar_bytes, wh


def apply(entries, root, **kw):
    return apply_layer(io.BytesIO(tar_bytes(entries)), root, media_type=MEDIA_TYPE_TAR, **kw)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("overlay", [False, True])
def test_cached_dir_replaced_by_symlink_mid_stream(jail, overlay):
    root, _ = jail
    apply([d("a"), f("a/x", b"1"), d("b"), sym("a", "b"), f("a/y", b"2")], root, overlay=overlay)
    assert (root / "a").is_symlink()
    assert (root / "b/y").read_bytes() == b"2"  # through the new symlink, not into the removed dir


@pytest.mark.parametrize("overlay", [False, True])
def test_cached_dir_replaced_by_escaping_symlink_is_refused(jail, overlay):
    root, _ = jail
    with pytest.raises(InvalidArgument):
        apply([d("a"), f("a/x", b"1"), sym("a", "../outside"), f("a/evil", b"x")], root, overlay=overlay)


def test_cached_dir_replaced_by_absolute_symlink_is_rerooted(jail):
    root, outside = jail
    apply([d("a"), f("a/x", b"1"), sym("a", str(outside)), f("a/victim", b"inside")], root)
    assert (root / outside.relative_to("/") / "victim").read_bytes() == b"inside"


def test_symlinked_parent_whose_target_is_replaced_by_a_file(jail):
    root, _ = jail
    with pytest.raises(InvalidArgument, match="not a directory"):
        apply([d("real"), sym("link", "real"), f("link/x", b"1"), f("real", b"now a file"),
               f("link/y", b"2")], root)


def test_cached_dir_removed_by_whiteout_then_recreated(jail):
    root, _ = jail
    apply([d("a"), f("a/x", b"1"), wh(".wh.a"), f("a/y", b"2")], root)
    assert sorted(os.listdir(root / "a")) == ["y"]


def test_symlink_below_a_cached_parent_is_followed_by_the_full_walk(jail):
    root, _ = jail
    apply([d("a"), d("b"), sym("a/s", "../b"), f("a/s/x", b"1"), sym("a/abs", "/b"), f("a/abs/y", b"2")], root)
    assert (root / "b/x").read_bytes() == b"1"
    assert (root / "b/y").read_bytes() == b"2"


def test_many_directories_evict_and_close_their_fds(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    entries = []
    for i in range(40):
        entries += [d(f"d{i}"), d(f"d{i}/sub"), f(f"d{i}/sub/f", bytes([i]))]
    entries += [f(f"d{i}/late", b"z") for i in range(40)]  # revisit evicted parents
    before = _open_fds()
    apply(entries, root)
    assert _open_fds() == before
    assert all((root / f"d{i}/sub/f").read_bytes() == bytes([i]) for i in range(40))
    assert all((root / f"d{i}/late").exists() for i in range(40))


def test_dircache_reuses_fds_and_evicts_the_oldest(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    root_fd = open_root(str(tmp_path))
    before = _open_fds()
    cache = DirCache(root_fd, limit=2)
    try:
        first, real = cache.open(("a",))
        assert real == ("a",) and cache.open(("a",))[0] == first
        cache.open(("b",))
        cache.open(("c",))  # evicts "a"
        assert cache.statistics() == {"open": 2, "hits": 1, "misses": 3}
        assert _open_fds() == before + 2
        cache.open(("c", "new"))  # made from the cached parent
        assert (tmp_path / "c/new").is_dir()
    finally:
        cache.clear()
        os.close(root_fd)
    assert _open_fds() == before - 1
