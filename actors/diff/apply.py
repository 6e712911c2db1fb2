"""apply_layer: extract one layer tar into a directory, safely.

Per entry (containerd's order): clean the name, resolve its parent inside the
root (see ``saferoot``), create missing parents, handle whiteouts, remove an
existing non-directory on either side, create the entry, then owner, xattrs,
mode and times.  Directory times are set once the stream has ended.
Parent directories stay open across entries (``dircache``); the blob is
inflated and hashed in a helper thread ahead of the extractor (``readahead``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from typing import BinaryIO, Sequence

import attrs

from wire.errdefs import DockyardError, Internal, InvalidArgument

from .media import MEDIA_TYPE_TAR, layer_compression
from .dircache import DirCache
from .readahead import read_ahead
from .saferoot import clean_name, fd_path, open_dir_in_root, open_root
from .streams import CHUNK, DigestReader, decompressing_reader
from .tarstream import iter_members, member_xattrs, pax_time_ns
from .whiteout import (
    OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIX,
    WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
)

_MAX_TIME_NS = (1 << 63) - 1
_MAX_DEVICE = 0xFFFFFFFF
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# errnos that mean "this archive does not fit this tree", not a broken host.
_ARCHIVE_ERRNOS = {errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENOENT,
                   errno.EINVAL, errno.EMLINK, errno.ENOTEMPTY, errno.EPERM}


@attrs.frozen(kw_only=True)
class ApplyResult:
    """What was applied: the DiffID and size of the uncompressed tar."""

    digest: str
    size: int
    media_type: str = MEDIA_TYPE_TAR


def apply_layer(
    stream: BinaryIO,
    root: str | os.PathLike[str],
    *,
    media_type: str,
    overlay: bool = False,
    lowers: Sequence[str | os.PathLike[str]] = (),
) -> ApplyResult:
    """Extract the layer blob ``stream`` (of ``media_type``) into ``root``.

    ``overlay=True`` means ``root`` is an overlay upperdir: whiteouts become
    char 0:0 devices and opaque xattrs, and directories created implicitly
    copy their metadata from the first of ``lowers`` (nearest first) that has
    them.  Blocking; run it in a thread.  Errors: NotImplemented_ (media type),
    InvalidArgument (bad or hostile archive), DataLoss (corrupt compression).
    """
    compression = layer_compression(media_type)
    tar_bytes = DigestReader(decompressing_reader(stream, compression))
    root_fd = open_root(os.fspath(root))
    extractor = _Extractor(root_fd=root_fd, overlay=overlay, dirs=DirCache(root_fd))
    try:
        extractor.open_lowers([os.fspath(p) for p in lowers])
        with read_ahead(tar_bytes) as ahead:  # inflating and hashing in a helper thread
            for tar, member in iter_members(ahead):
                extractor.entry(tar, member)
            extractor.finish()
            ahead.drain()  # trailing padding counts in the DiffID; drains the blob too
    finally:
        extractor.close()
    return ApplyResult(digest=tar_bytes.digest(), size=tar_bytes.size)


@attrs.define(eq=False)
class _Extractor:
    root_fd: int
    overlay: bool
    dirs: DirCache  # parent directories, kept open across entries
    lower_fds: list[int] = attrs.field(factory=list)
    # Real paths ("a/b") written by this layer; opaque markers keep them.
    extracted: set[str] = attrs.field(factory=set)
    # Real path parts → (atime ns, mtime ns), applied after the stream ends.
    dir_times: dict[tuple[str, ...], tuple[int, int]] = attrs.field(factory=dict)
    # Set when an entry removed a directory or symlink: ``dirs`` is cleared after it.
    reshaped: bool = False

    def open_lowers(self, lowers: list[str]) -> None:
        for lower in lowers:
            self.lower_fds.append(open_root(lower, what="lower"))

    def close(self) -> None:
        self.dirs.clear()
        for fd in [self.root_fd, *self.lower_fds]:
            os.close(fd)
        self.lower_fds.clear()

    # -- per entry -------------------------------------------------------

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if not parts:
            return  # the root itself
        try:
            parent_fd, real_parent = self.dirs.open(parts[:-1], on_create=self._made_parent, name=member.name)
        except OSError as exc:
            raise _os_error(member.name, exc) from None
        except ValueError as exc:
            raise InvalidArgument(f"layer entry {member.name!r}: {exc}") from None
        try:
            base = parts[-1]
            if base.startswith(WHITEOUT_PREFIX):
                self._whiteout(member, parent_fd, real_parent, base)
            else:
                self._write(tar, member, parent_fd, real_parent, base)
        except OSError as exc:
            raise _os_error(member.name, exc) from None
        except (ValueError, OverflowError) as exc:
            # NUL in a name, ids or device numbers out of range for the host
            raise InvalidArgument(f"layer entry {member.name!r}: {exc}") from None
        finally:
            if self.reshaped:  # after the entry: its parent fd stays valid while it runs
                self.dirs.clear()
                self.reshaped = False

    def _whiteout(self, member: tarfile.TarInfo, dir_fd: int, real_dir: tuple[str, ...], base: str) -> None:
        if base == WHITEOUT_OPAQUE:
            if self.overlay:
                os.setxattr(fd_path(dir_fd), OPAQUE_XATTR, b"y")
            else:
                self._clear_dir(dir_fd, real_dir)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk and friends): never written
        target = base[len(WHITEOUT_PREFIX):]
        if target in ("", ".", ".."):
            raise InvalidArgument(f"layer entry {member.name!r}: whiteout target leaves its directory")
        existing = _lstat(dir_fd, target)
        if existing is not None:
            self._remove(dir_fd, target, existing)
        if self.overlay:
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=dir_fd)
            os.chown(target, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
            self.extracted.add(_key(real_dir + (target,)))

    def _remove(self, dir_fd: int, name: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            self.reshaped = True  # cached directory names may now resolve elsewhere
        _remove(dir_fd, name, st)

    def _clear_dir(self, dir_fd: int, real_dir: tuple[str, ...]) -> None:
        """Plain-mode opaque: delete children not extracted from this layer."""
        for name in os.listdir(dir_fd):
            real = real_dir + (name,)
            st = _lstat(dir_fd, name)
            if st is None:
                continue
            if _key(real) not in self.extracted:
                self._remove(dir_fd, name, st)
            elif stat.S_ISDIR(st.st_mode):
                sub_fd, _ = open_dir_in_root(dir_fd, (name,), follow=False)
                try:
                    self._clear_dir(sub_fd, real)
                finally:
                    os.close(sub_fd)

    def _write(self, tar: tarfile.TarFile, member: tarfile.TarInfo, dir_fd: int,
               real_dir: tuple[str, ...], base: str) -> None:
        existing = _lstat(dir_fd, base)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            self._remove(dir_fd, base, existing)
            existing = None
        real = real_dir + (base,)
        if member.isdir():
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=dir_fd)
        elif member.isreg():
            self._write_file(tar, member, dir_fd, base)
            self.extracted.add(_key(real))
            return  # its metadata was set through the open fd
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=dir_fd)
        elif member.islnk():
            self._hardlink(member, dir_fd, base)
            self.extracted.add(_key(real))
            return  # same inode as its target: its metadata is already right
        elif member.ischr() or member.isblk() or member.isfifo():
            self._mknod(member, dir_fd, base)
        else:
            raise InvalidArgument(f"layer entry {member.name!r}: unsupported type {member.type!r}")
        self.extracted.add(_key(real))
        self._set_metadata(member, dir_fd, base, real)

    def _write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, dir_fd: int, base: str) -> None:
        source = tar.extractfile(member)
        assert source is not None
        fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
        try:
            self._copy_data(source, member, fd)
            self._set_file_metadata(member, fd)
        finally:
            os.close(fd)

    @staticmethod
    def _copy_data(source, member: tarfile.TarInfo, fd: int) -> None:
        while True:
            try:
                chunk = source.read(CHUNK)
            except tarfile.ReadError as exc:
                raise InvalidArgument(f"layer entry {member.name!r}: {exc}") from None
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

    @staticmethod
    def _set_file_metadata(member: tarfile.TarInfo, fd: int) -> None:
        """Owner, xattrs, mode, times of a regular file, through the fd it was written with."""
        os.chown(fd, member.uid, member.gid)
        for name, value in member_xattrs(member).items():
            _set_xattr(fd, name, value, member.name)
        os.chmod(fd, member.mode & 0o7777)  # after chown, which clears setuid
        os.utime(fd, ns=_entry_times(member))

    def _hardlink(self, member: tarfile.TarInfo, dir_fd: int, base: str) -> None:
        parts = clean_name(member.linkname, what=f"hardlink target of {member.name!r}:")
        if not parts:
            raise InvalidArgument(f"layer entry {member.name!r}: hardlink to the root")
        try:
            target_dir, real_dir = open_dir_in_root(self.root_fd, parts[:-1], name=member.linkname)
        except FileNotFoundError:
            raise InvalidArgument(
                f"layer entry {member.name!r}: hardlink target {member.linkname!r} not found"
            ) from None
        try:
            st = _lstat(target_dir, parts[-1])
            if st is None:
                raise InvalidArgument(
                    f"layer entry {member.name!r}: hardlink target {member.linkname!r} not found"
                )
            if stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(
                    f"layer entry {member.name!r}: hardlink target {member.linkname!r} is a directory"
                )
            if stat.S_ISLNK(st.st_mode) and _escapes(
                len(real_dir), os.readlink(parts[-1], dir_fd=target_dir)
            ):
                raise InvalidArgument(
                    f"layer entry {member.name!r}: hardlink to symlink {member.linkname!r} "
                    "that points outside the root"
                )
            # linkat without AT_SYMLINK_FOLLOW: links the inode found, never a
            # path outside; both ends are pinned by directory fds.
            os.link(parts[-1], base, src_dir_fd=target_dir, dst_dir_fd=dir_fd, follow_symlinks=False)
        finally:
            os.close(target_dir)

    def _mknod(self, member: tarfile.TarInfo, dir_fd: int, base: str) -> None:
        if member.isfifo():
            kind, device = stat.S_IFIFO, 0
        else:
            if member.devmajor > _MAX_DEVICE or member.devminor > _MAX_DEVICE:
                raise InvalidArgument(f"layer entry {member.name!r}: device number out of range")
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
        os.mknod(base, kind | 0o600, device, dir_fd=dir_fd)

    def _set_metadata(self, member: tarfile.TarInfo, dir_fd: int, base: str, real: tuple[str, ...]) -> None:
        times = _entry_times(member)
        xattrs = member_xattrs(member)
        if member.issym():
            os.chown(base, member.uid, member.gid, dir_fd=dir_fd, follow_symlinks=False)
            for name, value in xattrs.items():
                _set_xattr(fd_path(dir_fd, base), name, value, member.name, follow=False)
            os.utime(base, ns=times, dir_fd=dir_fd, follow_symlinks=False)
            return
        # An O_PATH fd pins the inode; /proc/self/fd/N then names exactly it.
        fd = os.open(base, _PATH_FLAGS, dir_fd=dir_fd)
        try:
            path = fd_path(fd)
            os.chown(path, member.uid, member.gid)
            for name, value in xattrs.items():
                _set_xattr(path, name, value, member.name)
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears setuid
            if member.isdir():
                self.dir_times[real] = times
            else:
                os.utime(path, ns=times)
        finally:
            os.close(fd)

    # -- implicit parents and the end --------------------------------------

    def _made_parent(self, real: tuple[str, ...], dir_fd: int, name: str) -> None:
        """A parent the archive did not list: copy it from the first lower that has it."""
        for lower_fd in self.lower_fds:
            try:
                src_fd, _ = open_dir_in_root(lower_fd, real, follow=False)
            except (OSError, DockyardError):
                continue
            try:
                st = os.fstat(src_fd)
                dst = fd_path(dir_fd, name)
                os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
                for xname in os.listxattr(fd_path(src_fd)):
                    if xname.startswith(OVERLAY_XATTR_PREFIX):
                        continue  # opaque/redirect state belongs to that lower only
                    _set_xattr(dst, xname, os.getxattr(fd_path(src_fd), xname), "/".join(real))
                os.chmod(dst, stat.S_IMODE(st.st_mode))
                self.dir_times[real] = (st.st_atime_ns, st.st_mtime_ns)
            finally:
                os.close(src_fd)
            return

    def finish(self) -> None:
        """Set directory times now that nothing more is written into them."""
        for real, times in reversed(self.dir_times.items()):
            try:
                fd, _ = open_dir_in_root(self.root_fd, real, follow=False)
            except (OSError, DockyardError):
                continue  # removed or replaced later in the layer
            try:
                os.utime(fd_path(fd), ns=times)
            finally:
                os.close(fd)


def _key(real: tuple[str, ...]) -> str:
    return "/".join(real)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: does not follow symlinks
    else:
        os.unlink(name, dir_fd=dir_fd)


def _escapes(depth: int, target: str) -> bool:
    """Whether symlink ``target``, found ``depth`` directories below the root,
    points outside the root (absolute, or climbing above it)."""
    if target.startswith("/"):
        return True
    for part in target.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _entry_times(member: tarfile.TarInfo) -> tuple[int, int]:
    mtime = pax_time_ns(member, "mtime")
    if mtime is None:
        mtime = int(member.mtime) * 1_000_000_000
    atime = pax_time_ns(member, "atime")
    atime = mtime if atime is None else max(atime, mtime)
    if abs(mtime) > _MAX_TIME_NS:
        mtime = 0
    if abs(atime) > _MAX_TIME_NS:
        atime = 0
    return atime, mtime


def _set_xattr(path: str | int, name: str, value: bytes, entry: str, *, follow: bool = True) -> None:
    try:
        os.setxattr(path, name, value, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise InvalidArgument(f"layer entry {entry!r}: xattr {name!r}: {exc.strerror}") from None


def _os_error(name: str, exc: OSError) -> DockyardError:
    text = f"layer entry {name!r}: {exc.strerror or exc}"
    if exc.errno in _ARCHIVE_ERRNOS:
        return InvalidArgument(text)
    return Internal(text)
