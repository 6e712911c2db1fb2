"""compare: write the differences between two trees as a layer tar.

Two walks produce the same change list: ``compare`` walks lower and upper
side by side; ``compare_overlay_upper`` walks only an overlay upperdir, where
char 0:0 devices are deletions and an opaque xattr means "the lower below here
is gone".  Both hand changes to ``_Emitter``, which writes PAX entries
(parents first) through one digesting, compressing writer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO, Sequence

import attrs

from wire.errdefs import Internal, InvalidArgument

from .media import COMPRESSION_MEDIA_TYPE, Compression, compression_named
from .streams import CHUNK, LayerWriter
from .tarstream import XATTR_PREFIX
from .whiteout import OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

Rel = tuple[str, ...]


@attrs.frozen(kw_only=True)
class CompareResult:
    """The written blob (digest, size, media type) and its tar's DiffID."""

    digest: str
    size: int
    diff_id: str
    media_type: str


def compare(
    lower_dir: str | os.PathLike[str],
    upper_dir: str | os.PathLike[str],
    out: BinaryIO,
    *,
    compression: str | Compression = "gzip",
    source_date_epoch: int | None = None,
) -> CompareResult:
    """Write to ``out`` a layer that turns ``lower_dir`` into ``upper_dir``.

    ``compression`` is ``gzip``, ``zstd`` or ``none`` (else NotImplemented_);
    ``source_date_epoch`` clamps every mtime.  Blocking; run it in a thread.
    """
    lower, upper = _dir(lower_dir), _dir(upper_dir)
    with _Emitter.open(upper, out, compression, source_date_epoch) as emitter:
        _double_walk(emitter, lower, upper, (), lower_exists=True)
    return emitter.result()


def compare_overlay_upper(
    upper_dir: str | os.PathLike[str],
    lower_dirs: Sequence[str | os.PathLike[str]],
    out: BinaryIO,
    *,
    compression: str | Compression = "gzip",
    source_date_epoch: int | None = None,
) -> CompareResult:
    """Like ``compare`` but from an overlay upperdir alone.

    ``lower_dirs`` (nearest first) are only looked at to drop whiteouts of
    paths that no lower has.
    """
    upper = _dir(upper_dir)
    lowers = [_dir(p) for p in lower_dirs]
    with _Emitter.open(upper, out, compression, source_date_epoch) as emitter:
        _walk_upper(emitter, upper, lowers, ())
    return emitter.result()


# -- walks ----------------------------------------------------------------

def _double_walk(em: "_Emitter", lower: str, upper: str, rel: Rel, *, lower_exists: bool) -> None:
    upper_here = _join(upper, rel)
    lower_here = _join(lower, rel)
    upper_names = set(os.listdir(upper_here))
    lower_names = set(os.listdir(lower_here)) if lower_exists else set()
    for name in sorted(upper_names | lower_names):
        child = rel + (name,)
        ust = _lstat(os.path.join(upper_here, name)) if name in upper_names else None
        lst = _lstat(os.path.join(lower_here, name)) if name in lower_names else None
        if ust is None or stat.S_ISSOCK(ust.st_mode):
            if lst is not None and not stat.S_ISSOCK(lst.st_mode):
                em.whiteout(rel, name)
            continue
        if lst is None or stat.S_IFMT(lst.st_mode) != stat.S_IFMT(ust.st_mode):
            em.add(child, ust)
            if stat.S_ISDIR(ust.st_mode):
                _double_walk(em, lower, upper, child, lower_exists=False)
            continue
        if _changed(os.path.join(lower_here, name), os.path.join(upper_here, name), lst, ust):
            em.add(child, ust)
        if stat.S_ISDIR(ust.st_mode):
            _double_walk(em, lower, upper, child, lower_exists=True)


def _walk_upper(em: "_Emitter", upper: str, lowers: list[str], rel: Rel) -> None:
    here = _join(upper, rel)
    for name in sorted(os.listdir(here)):
        child = rel + (name,)
        path = os.path.join(here, name)
        st = _lstat(path)
        if st is None or stat.S_ISSOCK(st.st_mode):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            if any(_lstat(_join(lower, child)) is not None for lower in lowers):
                em.whiteout(rel, name)
            continue
        em.add(child, st)
        if stat.S_ISDIR(st.st_mode):
            if _getxattr(path, OPAQUE_XATTR) == b"y":
                em.marker(child, WHITEOUT_OPAQUE)
            _walk_upper(em, upper, lowers, child)


def _changed(lower: str, upper: str, lst: os.stat_result, ust: os.stat_result) -> bool:
    """containerd's sameFile, negated: metadata, then link target or content."""
    if (lst.st_mode, lst.st_uid, lst.st_gid) != (ust.st_mode, ust.st_uid, ust.st_gid):
        return True
    if (stat.S_ISCHR(ust.st_mode) or stat.S_ISBLK(ust.st_mode)) and lst.st_rdev != ust.st_rdev:
        return True
    if _xattrs(lower) != _xattrs(upper):
        return True
    if stat.S_ISLNK(ust.st_mode):
        return os.readlink(lower) != os.readlink(upper)
    if stat.S_ISDIR(ust.st_mode) or not stat.S_ISREG(ust.st_mode):
        return not _same_mtime(lst, ust)
    if lst.st_size != ust.st_size:
        return True
    (ls, ln), (us, un) = divmod(lst.st_mtime_ns, 1_000_000_000), divmod(ust.st_mtime_ns, 1_000_000_000)
    if ls != us:
        return True
    if ln == 0 and un == 0:  # both may have lost their nanoseconds (from tars): look inside
        return lst.st_size > 0 and not _same_content(lower, upper)
    return ln != un


def _same_mtime(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_mtime_ns == b.st_mtime_ns or _truncated_same(a, b)


def _truncated_same(a: os.stat_result, b: os.stat_result) -> bool:
    """Equal seconds where one side lost its nanoseconds (came from a tar)."""
    sa, na = divmod(a.st_mtime_ns, 1_000_000_000)
    sb, nb = divmod(b.st_mtime_ns, 1_000_000_000)
    return sa == sb and (na == 0 or nb == 0)


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(CHUNK), fb.read(CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


# -- the tar writer ----------------------------------------------------------

@attrs.define(eq=False)
class _Emitter:
    upper: str
    writer: LayerWriter
    tar: tarfile.TarFile
    source_date_epoch: int | None
    compression: Compression
    emitted_dirs: set[Rel] = attrs.field(factory=set)
    # (st_dev, st_ino) → first name written, to write later names as hardlinks.
    links: dict[tuple[int, int], str] = attrs.field(factory=dict)

    @classmethod
    def open(cls, upper: str, out: BinaryIO, compression: str | Compression,
             source_date_epoch: int | None) -> "_Emitter":
        kind = compression_named(compression)
        writer = LayerWriter(out, kind)
        tar = tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT,
                           encoding="utf-8", errors="surrogateescape")
        return cls(upper=upper, writer=writer, tar=tar,
                   source_date_epoch=source_date_epoch, compression=kind)

    def __enter__(self) -> "_Emitter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.tar.close()  # end-of-archive blocks
            self.writer.close()

    def result(self) -> CompareResult:
        return CompareResult(
            digest=self.writer.digest, size=self.writer.size, diff_id=self.writer.diff_id,
            media_type=COMPRESSION_MEDIA_TYPE[self.compression],
        )

    def _parents(self, rel: Rel) -> None:
        for depth in range(1, len(rel)):
            parent = rel[:depth]
            if parent not in self.emitted_dirs:
                st = _lstat(_join(self.upper, parent))
                if st is None or not stat.S_ISDIR(st.st_mode):
                    raise Internal(f"upper {self.upper!r}: {'/'.join(parent)!r} vanished while diffing")
                self.add(parent, st)

    def whiteout(self, rel_dir: Rel, name: str) -> None:
        self.marker(rel_dir, WHITEOUT_PREFIX + name)

    def marker(self, rel_dir: Rel, marker: str) -> None:
        """An empty regular file with epoch times: a whiteout in the tar."""
        rel = rel_dir + (marker,)
        self._parents(rel)
        info = tarfile.TarInfo("/".join(rel))
        info.type, info.mode, info.mtime, info.size = tarfile.REGTYPE, 0, 0, 0
        self.tar.addfile(info)

    def add(self, rel: Rel, st: os.stat_result) -> None:
        self._parents(rel)
        path = _join(self.upper, rel)
        info = tarfile.TarInfo("/".join(rel))
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        mtime = st.st_mtime_ns // 1_000_000_000
        if self.source_date_epoch is not None and mtime > self.source_date_epoch:
            mtime = self.source_date_epoch
        info.mtime = mtime
        info.pax_headers = {
            XATTR_PREFIX + name: value.decode("utf-8", "surrogateescape")
            for name, value in sorted(_xattrs(path).items())
            if not name.startswith(OVERLAY_XATTR_PREFIX)
        }
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            self.emitted_dirs.add(rel)
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        elif stat.S_ISREG(mode):
            inode = (st.st_dev, st.st_ino)
            first = self.links.get(inode) if st.st_nlink > 1 else None
            if first is not None:
                info.type, info.linkname = tarfile.LNKTYPE, first
            else:
                if st.st_nlink > 1:
                    self.links[inode] = info.name
                info.type, info.size = tarfile.REGTYPE, st.st_size
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as source:
                    try:
                        self.tar.addfile(info, source)
                    except OSError as exc:
                        raise Internal(f"upper file {info.name!r}: changed while diffing ({exc})") from None
                return
        else:
            raise InvalidArgument(f"upper entry {info.name!r}: unsupported file type")
        self.tar.addfile(info)


def _dir(path: str | os.PathLike[str]) -> str:
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InvalidArgument(f"directory {path!r}: not a directory")
    return path


def _join(root: str, rel: Rel) -> str:
    return os.path.join(root, *rel) if rel else root


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    values = {}
    for name in names:
        value = _getxattr(path, name)
        if value is not None:
            values[name] = value
    return values


def _getxattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None
