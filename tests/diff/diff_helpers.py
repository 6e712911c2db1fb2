"""Building layer tars and describing trees for the diff tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile

import attrs
import zstandard

MTIME = 1_600_000_000


@attrs.frozen(kw_only=True)
class E:
    """One tar entry to write."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    major: int = 0
    minor: int = 0
    xattrs: dict = attrs.field(factory=dict)
    mtime: int = MTIME


def d(name, mode=0o755, **kw):
    return E(name=name, type=tarfile.DIRTYPE, mode=mode, **kw)


def f(name, data=b"", mode=0o644, **kw):
    return E(name=name, data=data, mode=mode, **kw)


def sym(name, target, **kw):
    return E(name=name, type=tarfile.SYMTYPE, linkname=target, mode=0o777, **kw)


def hard(name, target, **kw):
    return E(name=name, type=tarfile.LNKTYPE, linkname=target, **kw)


def chrdev(name, major, minor, mode=0o666, **kw):
    return E(name=name, type=tarfile.CHRTYPE, major=major, minor=minor, mode=mode, **kw)


def blkdev(name, major, minor, mode=0o660, **kw):
    return E(name=name, type=tarfile.BLKTYPE, major=major, minor=minor, mode=mode, **kw)


def fifo(name, mode=0o644, **kw):
    return E(name=name, type=tarfile.FIFOTYPE, mode=mode, **kw)


def wh(name):
    """A whiteout marker as layers carry it: an empty regular file."""
    return E(name=name, mode=0o000, mtime=0)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type, info.mode, info.uid, info.gid = e.type, e.mode, e.uid, e.gid
            info.mtime, info.linkname = e.mtime, e.linkname
            info.devmajor, info.devminor = e.major, e.minor
            info.pax_headers = {
                "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in e.xattrs.items()
            }
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _xattrs(path: str) -> tuple:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted(
        (n, os.getxattr(path, n, follow_symlinks=False))
        for n in names if not n.startswith(("trusted.overlay.", "security."))
    ))


def describe(path: str) -> tuple:
    st = os.lstat(path)
    mode = st.st_mode
    kind = {
        stat.S_IFDIR: "dir", stat.S_IFREG: "file", stat.S_IFLNK: "symlink",
        stat.S_IFCHR: "chr", stat.S_IFBLK: "blk", stat.S_IFIFO: "fifo", stat.S_IFSOCK: "sock",
    }[stat.S_IFMT(mode)]
    size = content = target = device = None
    if kind == "file":
        size = st.st_size
        with open(path, "rb") as fh:
            content = hashlib.sha256(fh.read()).hexdigest()[:16]
    elif kind == "symlink":
        target = os.readlink(path)
    elif kind in ("chr", "blk"):
        device = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return (kind, oct(stat.S_IMODE(mode)), st.st_uid, st.st_gid, size, content, target, device,
            _xattrs(path))


def listing(root) -> dict[str, tuple]:
    """path → (type, mode, uid, gid, size, content hash, link target, device, xattrs)."""
    root = os.fspath(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = describe(full)
    return out


def snapshot_outside(path) -> dict:
    """Everything under ``path`` including times, to prove nothing changed."""
    path = os.fspath(path)
    out = {".": (describe(path), os.lstat(path).st_mtime_ns)}
    for rel, desc in listing(path).items():
        out[rel] = (desc, os.lstat(os.path.join(path, rel)).st_mtime_ns)
    return out
