"""read_ahead: the same bytes in the same order, errors in stream order, and no
helper thread outliving the ``with`` block however it is left."""

from __future__ import annotations

import io
import os
import threading

import pytest

from actors.diff import MEDIA_TYPE_TAR_GZIP, apply_layer
from actors.diff import readahead
from actors.diff.readahead import read_ahead
from wire.errdefs import DataLoss

from diff_helpers import f, gz, tar_bytes


def _helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "layer-read-ahead"]


class _Chunks:
    """A source answering fixed pieces, then raising ``error`` (if any) instead of EOF."""

    def __init__(self, pieces: list[bytes], error: Exception | None = None) -> None:
        self.pieces, self.error, self.reads = list(pieces), error, 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.pieces:
            return self.pieces.pop(0)
        if self.error is not None:
            raise self.error
        return b""


@pytest.mark.parametrize("size", [1, 7, 512, 10240, 1 << 20, -1])
def test_same_bytes_whatever_the_read_size(size):
    data = os.urandom(300_000)
    pieces = [data[i:i + 70_000] for i in range(0, len(data), 70_000)]
    with read_ahead(_Chunks(pieces)) as reader:
        out = bytearray()
        while chunk := reader.read(size):
            out += chunk
        assert reader.read(10) == b""
    assert bytes(out) == data and reader.size == len(data)
    assert not _helpers()


def test_empty_source():
    with read_ahead(_Chunks([])) as reader:
        assert reader.read(512) == b"" and reader.size == 0


def test_source_error_is_raised_after_the_bytes_before_it():
    with read_ahead(_Chunks([b"abc", b"def"], DataLoss("gzip layer stream: corrupt"))) as reader:
        assert reader.read(4) == b"abc"
        assert reader.read(4) == b"def"
        with pytest.raises(DataLoss, match="corrupt"):
            reader.read(4)
        assert reader.read(4) == b""
    assert not _helpers()


def test_leaving_early_stops_a_producer_blocked_on_a_full_queue(monkeypatch):
    monkeypatch.setattr(readahead, "DEPTH", 2)
    source = _Chunks([b"x" * 10] * 1000)
    with pytest.raises(RuntimeError):
        with read_ahead(source) as reader:
            reader.read(5)
            raise RuntimeError("the extractor failed")
    assert not _helpers()
    assert source.reads < 1000  # it stopped instead of reading everything


def test_corrupt_gzip_layer_is_data_loss_and_leaves_no_helper(tmp_path):
    blob = bytearray(gz(tar_bytes([f("a", os.urandom(200_000)), f("b", b"y")])))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(DataLoss):
        apply_layer(io.BytesIO(bytes(blob)), tmp_path, media_type=MEDIA_TYPE_TAR_GZIP)
    assert not _helpers()
