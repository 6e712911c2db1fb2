"""Copy a directory tree exactly: owners, modes, times, xattrs, hardlinks,
symlinks, devices, fifos and sockets.  Blocking; run it off the event loop.
"""

from __future__ import annotations

import errno
import os
import stat

_CHUNK = 1 << 30


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents and metadata of directory ``src`` into ``dst``.

    ``dst`` must exist and be empty.  Files linked together inside ``src`` stay
    linked together inside ``dst``.  Directory metadata is applied after the
    directory's contents, so its times survive the copy.
    """
    links: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, str, os.stat_result]] = [(src, dst, os.lstat(src))]
    pending = [(src, dst)]
    while pending:
        sdir, ddir = pending.pop()
        with os.scandir(sdir) as entries:
            for entry in entries:
                s = entry.path
                d = os.path.join(ddir, entry.name)
                st = os.lstat(s)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(d, 0o700)
                    dirs.append((s, d, st))
                    pending.append((s, d))
                else:
                    _copy_entry(s, d, st, links)
    for s, d, st in reversed(dirs):
        _copy_metadata(s, d, st)


def _copy_entry(src: str, dst: str, st: os.stat_result, links: dict) -> None:
    ident = (st.st_dev, st.st_ino)
    if st.st_nlink > 1:
        first = links.get(ident)
        if first is not None:
            os.link(first, dst, follow_symlinks=False)
            return
        links[ident] = dst
    mode = st.st_mode
    if stat.S_ISREG(mode):
        _copy_file(src, dst)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        os.mknod(dst, stat.S_IFMT(mode) | 0o600, st.st_rdev)
    else:
        raise OSError(errno.EINVAL, f"copy {src!r}: unsupported file type {oct(mode)}")
    _copy_metadata(src, dst, st)


def _copy_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                while os.copy_file_range(fin, fout, _CHUNK):
                    pass
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                _copy_by_read(fin, fout)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_by_read(fin: int, fout: int) -> None:
    os.lseek(fin, 0, os.SEEK_SET)
    os.lseek(fout, 0, os.SEEK_SET)
    os.ftruncate(fout, 0)
    while chunk := os.read(fin, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fout, view):]


def _copy_metadata(src: str, dst: str, st: os.stat_result) -> None:
    # Order matters: chown clears setuid bits and file capabilities, so the
    # mode and xattrs come after it; times come last.
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    is_link = stat.S_ISLNK(st.st_mode)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    copy_xattrs(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise
    for name in names:
        try:
            value = os.getxattr(src, name, follow_symlinks=False)
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA):
                continue
            raise
