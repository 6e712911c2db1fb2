"""compare(): the tar it writes, entry by entry, and random round trips."""

from __future__ import annotations

import io
import os
import socket
import stat
import tarfile
import tempfile

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.diff import apply_layer, compare
from wire.errdefs import InvalidArgument, NotImplemented_

from diff_helpers import listing

OLD = 1_500_000_000  # fixed times so "unchanged" is unambiguous


def _members(blob: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        return tar.getmembers()


def _write(path, data=b"", mode=0o644, mtime=OLD):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    os.utime(path, (mtime, mtime))


def _pair(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for root in (lower, upper):
        _write(root / "same/file", b"same")
        _write(root / "gone", b"bye")
        _write(root / "deep/dir/x", b"x")
        _write(root / "chmod", b"c", mode=0o644)
        os.utime(root / "same", (OLD, OLD))
        os.utime(root / "deep/dir", (OLD, OLD))
        os.utime(root / "deep", (OLD, OLD))
        os.utime(root, (OLD, OLD))
    return lower, upper


def test_changes_deletions_parents_first_and_whiteout_shape(tmp_path):
    lower, upper = _pair(tmp_path)
    (upper / "gone").unlink()
    _write(upper / "deep/dir/new", b"new", mtime=OLD + 5)
    os.utime(upper / "deep/dir", (OLD, OLD))  # parent unchanged, still emitted first
    os.chmod(upper / "chmod", 0o4755)
    out = io.BytesIO()
    result = compare(lower, upper, out, compression="none")
    members = {m.name: m for m in _members(out.getvalue())}
    names = list(members)
    assert set(names) == {"chmod", "deep", "deep/dir", "deep/dir/new", ".wh.gone"}
    assert names.index("deep") < names.index("deep/dir") < names.index("deep/dir/new")
    whiteout = members[".wh.gone"]
    assert whiteout.isreg() and whiteout.size == 0 and whiteout.mtime == 0
    assert members["chmod"].mode == 0o4755
    assert "same/file" not in members and "same" not in members
    assert result.media_type == "application/vnd.oci.image.layer.v1.tar"


def test_mtime_truncated_atime_dropped_and_source_date_epoch_clamps(tmp_path):
    lower, upper = _pair(tmp_path)
    os.utime(upper / "same/file", ns=(5_000_000_000_123, 2_000_000_000_999_999_999))
    with open(upper / "same/file", "ab") as fh:
        fh.write(b"!")
    os.utime(upper / "same/file", ns=(5_000_000_000_123, 2_000_000_000_999_999_999))
    out = io.BytesIO()
    compare(lower, upper, out, compression="gzip")
    member = {m.name: m for m in _members(out.getvalue())}["same/file"]
    assert member.mtime == 2_000_000_000
    assert not {"atime", "ctime", "mtime"} & set(member.pax_headers)
    out = io.BytesIO()
    compare(lower, upper, out, compression="zstd", source_date_epoch=1_700_000_000)
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(out.getvalue())
    assert {m.name: m for m in _members(raw)}["same/file"].mtime == 1_700_000_000


def test_sockets_skipped_hardlinks_kept_xattrs_and_devices_written(tmp_path):
    lower, upper = _pair(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(upper / "sock"))
    finally:
        sock.close()
    _write(upper / "h1", b"linked")
    os.link(upper / "h1", upper / "h2")
    os.setxattr(upper / "h1", "user.k", b"\xff\x00v")
    os.mknod(upper / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chown(upper / "null", 11, 22)
    out = io.BytesIO()
    compare(lower, upper, out, compression="none")
    members = {m.name: m for m in _members(out.getvalue())}
    assert "sock" not in members
    assert members["h1"].isreg() and members["h2"].islnk() and members["h2"].linkname == "h1"
    assert members["h1"].pax_headers["SCHILY.xattr.user.k"].encode("utf-8", "surrogateescape") == b"\xff\x00v"
    null = members["null"]
    assert null.ischr() and (null.devmajor, null.devminor, null.uid, null.gid) == (1, 3, 11, 22)


def test_same_size_same_second_content_change_is_found(tmp_path):
    lower, upper = _pair(tmp_path)
    _write(upper / "same/file", b"SAME")
    os.utime(upper / "same/file", ns=(OLD * 10**9, OLD * 10**9 + 1))  # tar-truncated vs not
    out = io.BytesIO()
    compare(lower, upper, out, compression="none")
    assert "same/file" in {m.name for m in _members(out.getvalue())}


def test_bad_arguments(tmp_path):
    lower, upper = _pair(tmp_path)
    with pytest.raises(NotImplemented_):
        compare(lower, upper, io.BytesIO(), compression="lz4")
    with pytest.raises(InvalidArgument):
        compare(lower, tmp_path / "missing", io.BytesIO())


# -- random trees round-trip ------------------------------------------------

_names = st.sampled_from(["a", "b", "c", "d.e", "f"])
_paths = st.lists(_names, min_size=1, max_size=3).map(tuple)
_nodes = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=40), st.sampled_from([0o644, 0o600, 0o4755, 0o2711])),
    st.tuples(st.just("dir"), st.just(b""), st.sampled_from([0o755, 0o700, 0o1777])),
    st.tuples(st.just("symlink"), st.sampled_from([b"a", b"../b", b"/etc/x", b"c/d"]), st.just(0)),
    st.tuples(st.just("fifo"), st.just(b""), st.just(0o640)),
)
_trees = st.dictionaries(_paths, _nodes, max_size=8)
_owners = st.sampled_from([(0, 0), (1000, 1000), (1, 2)])


def _materialize(root: str, tree: dict, owners: dict, base: dict | None = None) -> None:
    """Create ``tree`` (dropping paths whose parent is not a dir in it).

    Nodes equal to their counterpart in ``base`` get the old time, others a
    newer one, as an edit of a copy would leave them.
    """
    os.mkdir(root)
    for path in sorted(tree, key=len):
        if any(tree.get(path[:i], ("dir",))[0] != "dir" for i in range(1, len(path))):
            continue
        kind, data, mode = tree[path]
        full = os.path.join(root, *path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if kind == "file":
            with open(full, "wb") as fh:
                fh.write(data)
        elif kind == "dir":
            os.mkdir(full)
        elif kind == "symlink":
            os.symlink(data.decode(), full)
        else:
            os.mkfifo(full)
        uid, gid = owners.get(path, (0, 0))
        os.chown(full, uid, gid, follow_symlinks=False)
        if kind != "symlink":
            os.chmod(full, mode)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            full = os.path.join(dirpath, name)
            path = tuple(os.path.relpath(full, root).split("/"))
            same = base is None or base.get(path) == tree.get(path)
            mtime = OLD if same else OLD + 1
            os.utime(full, (mtime, mtime), follow_symlinks=False)
    os.utime(root, (OLD, OLD))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lower=_trees, upper=_trees, owners=st.dictionaries(_paths, _owners, max_size=4),
       keep=st.booleans(), compression=st.sampled_from(["gzip", "zstd", "none"]))
def test_random_trees_round_trip_through_compare_and_apply(lower, upper, owners, keep, compression):
    if keep:  # make upper a modification of lower rather than a stranger
        upper = {**lower, **upper}
    with tempfile.TemporaryDirectory() as tmp:
        lo, up, target = (os.path.join(tmp, n) for n in ("lower", "upper", "target"))
        _materialize(lo, lower, owners)
        _materialize(target, lower, owners)
        _materialize(up, upper, owners, base=lower)
        out = io.BytesIO()
        result = compare(lo, up, out, compression=compression)
        applied = apply_layer(io.BytesIO(out.getvalue()), target, media_type=result.media_type)
        assert applied.digest == result.diff_id
        assert listing(target) == listing(up)
