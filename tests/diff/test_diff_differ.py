"""The differ's small parts: the read-ahead reader over content, media types for compare."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.diff.differ import _Sequential, compression_for, unique_ref
from actors.diff.media import Compression
from wire.errdefs import NotImplemented_


class FakeReaderAt:
    def __init__(self, data: bytes) -> None:
        self.data, self.size, self.calls = data, len(data), 0

    def read_at(self, offset: int, size: int) -> bytes:
        self.calls += 1
        return self.data[offset:offset + size]


class _SmallBlocks(_Sequential):
    BLOCK = 1024  # small, so the examples cross blocks


@settings(deadline=None, max_examples=100)
@given(data=st.binary(max_size=5000), sizes=st.lists(st.integers(min_value=-1, max_value=3000), max_size=40))
def test_any_read_sizes_give_back_the_blob_in_order(data, sizes):
    reader = _SmallBlocks(FakeReaderAt(data))
    out = []
    for n in sizes:
        chunk = reader.read(n)
        assert len(chunk) <= (len(data) if n < 0 else n)
        out.append(chunk)
    while chunk := reader.read(777):
        out.append(chunk)
    assert b"".join(out) == data


def test_small_reads_are_served_from_one_read_ahead():
    fake = FakeReaderAt(bytes(200_000))
    reader = _Sequential(fake)
    while reader.read(512):
        pass
    assert fake.calls == 1


def test_compare_media_types():
    assert compression_for("application/vnd.oci.image.layer.v1.tar+gzip") is Compression.GZIP
    assert compression_for("application/vnd.oci.image.layer.v1.tar+zstd") is Compression.ZSTD
    assert compression_for("application/vnd.oci.image.layer.v1.tar") is Compression.NONE
    with pytest.raises(NotImplemented_, match="foo"):
        compression_for("application/foo")
    assert unique_ref() != unique_ref()
