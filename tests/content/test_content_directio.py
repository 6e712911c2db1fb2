"""Aligned writes that bypass the page cache (O_DIRECT): whole pages go direct, every other byte
buffered, and the blob, offset and digest are the same as for buffered writes whatever happens."""

import errno
import os

import pytest

from actors.content import directio
from actors.content import writer as writer_module
from content_helpers import blob_files, sha256

MiB = 1 << 20


def aligned(data: bytes):
    buf = directio.aligned_buffer(len(data))
    buf[: len(data)] = data
    return memoryview(buf)[: len(data)]


@pytest.fixture
def direct_writes(monkeypatch):
    """Bytes written through O_DIRECT descriptors, by descriptor."""
    opened: dict[int, int] = {}
    real_open, real_pwrite = directio.open_direct, os.pwrite

    def open_direct(path):
        fd = real_open(path)
        if fd >= 0:
            opened[fd] = 0
        return fd

    def pwrite(fd, data, offset):
        n = real_pwrite(fd, data, offset)
        if fd in opened:
            opened[fd] += n
        return n

    monkeypatch.setattr(directio, "open_direct", open_direct)
    monkeypatch.setattr(writer_module.os, "pwrite", pwrite)
    return opened


def test_whole_pages_go_direct_and_the_tail_buffered(store, direct_writes):
    data = os.urandom(3 * MiB + 123)
    w = store.writer("ref")
    assert w.write(aligned(data), aligned=True) == len(data)
    assert w.digest() == sha256(data)
    assert list(direct_writes.values()) == [3 * MiB]
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}


def test_an_unaligned_offset_stays_buffered(store, direct_writes):
    data = os.urandom(2 * MiB)
    w = store.writer("ref")
    w.write(data[:1000])  # a resumed ingest can stand anywhere
    w.write(aligned(data[1000:]), aligned=True)
    assert sum(direct_writes.values()) == 0
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}


def test_unaligned_callers_never_go_direct(store, direct_writes):
    data = os.urandom(MiB)
    w = store.writer("ref")
    w.write(data)  # streamed items: bytes objects, not aligned
    assert direct_writes == {}
    assert w.commit(len(data)) == sha256(data)


def test_a_filesystem_without_o_direct_is_written_buffered(store, monkeypatch):
    monkeypatch.setattr(directio, "open_direct", lambda path: -1)
    data = os.urandom(MiB + 5)
    w = store.writer("ref")
    w.write(aligned(data), aligned=True)
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}


def test_a_refused_direct_write_falls_back_to_buffered(store, monkeypatch, direct_writes):
    real_pwrite = writer_module.os.pwrite

    def refusing(fd, data, offset):
        if fd in direct_writes and offset >= MiB:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(writer_module.os, "pwrite", refusing)
    data = os.urandom(2 * MiB)
    w = store.writer("ref")
    w.write(aligned(data[:MiB]), aligned=True)
    w.write(aligned(data[MiB:]), aligned=True)
    assert sum(direct_writes.values()) == MiB
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}


def test_the_direct_descriptor_is_closed_with_the_writer(store, direct_writes):
    w = store.writer("ref")
    w.write(aligned(os.urandom(MiB)), aligned=True)
    (fd,) = direct_writes
    w.close()
    with pytest.raises(OSError):
        os.fstat(fd)


@pytest.mark.parametrize("size", [directio.ALIGN - 1, directio.ALIGN, 5 * directio.ALIGN + 1])
def test_direct_part_is_whole_pages_from_an_aligned_offset(size):
    assert directio.direct_part(0, size) == size - size % directio.ALIGN
    assert directio.direct_part(1, size) == 0


def test_staging_copies_large_chunks_page_aligned_and_leaves_small_ones(store, direct_writes):
    import ctypes

    staging = directio.Staging(min_size=writer_module.PARALLEL_MIN)
    assert staging.stage(b"x" * 100) is None
    w = store.writer("ref")
    chunks = [os.urandom(MiB), os.urandom(2 * MiB), os.urandom(MiB // 2)]
    for chunk in chunks:
        with staging.stage(chunk) as staged:
            assert bytes(staged) == chunk
            address = ctypes.addressof(ctypes.c_char.from_buffer(staged))
            assert address % directio.ALIGN == 0
            w.write(staged, aligned=True)
    data = b"".join(chunks)
    assert sum(direct_writes.values()) == len(data)
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}
