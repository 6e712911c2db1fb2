"""The native snapshotter's tree copier keeps every piece of metadata."""

import os
import stat

import pytest

from actors.snapshots import copy_tree, disk_usage


def snapshot_of(root):
    """Comparable description of every entry below ``root`` (inode-independent)."""
    out = {}
    inode_names = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [""] + dirnames + filenames if dirpath == root else dirnames + filenames:
            path = os.path.join(dirpath, name) if name else root
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            entry = {
                "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                "mtime": st.st_mtime_ns, "xattrs": {},
            }
            if not stat.S_ISLNK(st.st_mode):
                entry["xattrs"] = {n: os.getxattr(path, n) for n in os.listxattr(path)}
            if stat.S_ISREG(st.st_mode):
                entry["data"] = open(path, "rb").read()
                entry["link_group"] = inode_names.setdefault(st.st_ino, rel)
            if stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                entry["rdev"] = st.st_rdev
            out[rel] = entry
    return out


@pytest.fixture
def rich_tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "dir" / "deep" / "deeper").mkdir(parents=True)
    (src / "dir" / "deep" / "deeper" / "leaf").write_bytes(b"leaf")
    (src / "file").write_bytes(b"hello" * 1000)
    (src / "empty").write_bytes(b"")
    os.link(src / "file", src / "dir" / "hardlink")
    os.symlink("../file", src / "dir" / "symlink")
    os.symlink("/nonexistent/target", src / "dangling")
    os.mkfifo(src / "fifo")
    (src / "setuid").write_bytes(b"#!")
    os.chown(src / "setuid", 1000, 1000)
    os.chmod(src / "setuid", 0o4755)
    os.chmod(src / "dir" / "deep", 0o700)
    os.chown(src / "dir", 1234, 4321)
    os.lchown(src / "dir" / "symlink", 55, 66)
    os.setxattr(src / "file", "user.note", b"kept")
    if os.geteuid() == 0:
        os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.setxattr(src / "dir", "trusted.overlay.opaque", b"y")
        os.setxattr(src / "dir" / "deep", "security.capability",
                    b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
    os.utime(src / "dir" / "deep", ns=(1_000_000_000, 2_000_000_000))
    os.utime(src / "dir" / "symlink", ns=(3_000_000_000, 4_000_000_000), follow_symlinks=False)
    os.utime(src, ns=(5_000_000_000, 6_000_000_000))
    return str(src)


def test_copy_tree_preserves_everything(rich_tree, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    copy_tree(rich_tree, str(dst))
    assert snapshot_of(str(dst)) == snapshot_of(rich_tree)
    assert os.path.samefile(dst / "file", dst / "dir" / "hardlink")
    assert not os.path.samefile(dst / "file", os.path.join(rich_tree, "file"))


def test_copy_tree_into_nonempty_destination_refuses(rich_tree, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "file").write_bytes(b"there")
    with pytest.raises(FileExistsError):
        copy_tree(rich_tree, str(dst))


def test_disk_usage_counts_hardlinked_inodes_once(tmp_path):
    root = tmp_path / "u"
    root.mkdir()
    (root / "a").write_bytes(b"x" * 10_000)
    os.link(root / "a", root / "b")
    os.symlink("a", root / "c")
    usage = disk_usage(str(root))
    assert usage.inodes == 3  # root, a (=b), c
    expected = sum(os.lstat(root / n).st_blocks * 512 for n in ("", "a", "c"))
    assert usage.size == expected
    assert disk_usage(str(tmp_path / "missing")).inodes == 0
