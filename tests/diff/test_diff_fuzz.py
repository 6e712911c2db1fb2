"""Property tests for the parsing side: decompression and hostile tar bytes."""

from __future__ import annotations

import io
import os
import tempfile

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actors.diff import MEDIA_TYPE_TAR, apply_layer
from actors.diff.media import Compression
from actors.diff.streams import DigestReader, LayerWriter, decompressing_reader
from wire.errdefs import DockyardError

from diff_helpers import d, f, hard, sha, snapshot_outside, sym, tar_bytes


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200_000), compression=st.sampled_from(list(Compression)),
       read_size=st.integers(min_value=1, max_value=70_000), pieces=st.integers(1, 3))
def test_layer_writer_and_decompressing_reader_round_trip(data, compression, read_size, pieces):
    # Plain bytes that begin with gzip/zstd magic are sniffed as compressed, by design.
    assume(compression is not Compression.NONE or not data.startswith((b"\x1f\x8b", b"(\xb5/\xfd")))
    out = io.BytesIO()
    writer = LayerWriter(out, compression)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i:i + step])
    writer.close()
    blob = out.getvalue()
    assert writer.digest == sha(blob) and writer.size == len(blob)
    assert writer.diff_id == sha(data) and writer.uncompressed_size == len(data)
    reader = DigestReader(decompressing_reader(io.BytesIO(blob), compression))
    got = bytearray()
    while chunk := reader.read(read_size):
        assert len(chunk) <= max(read_size, 1 << 16)
        got += chunk
    assert bytes(got) == data and reader.digest() == sha(data)


_BASE = tar_bytes([
    d("dir"), f("dir/file", b"content" * 20, xattrs={"user.x": b"y"}), sym("dir/link", "../dir/file"),
    hard("dir/hard", "dir/file"), sym("up", ".."), f("top", b"t"),
])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.integers(0, 255)),
                          min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, len(_BASE))))
def test_mutated_tars_fail_typed_and_stay_inside_the_root(mutations, cut):
    data = bytearray(_BASE)
    for offset, value in mutations:
        data[offset] = value
    if cut is not None:
        del data[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = os.path.join(tmp, "root"), os.path.join(tmp, "outside")
        os.mkdir(root)
        os.mkdir(outside)
        with open(os.path.join(outside, "file"), "wb") as fh:
            fh.write(b"precious")
        before = snapshot_outside(outside)
        try:
            apply_layer(io.BytesIO(bytes(data)), root, media_type=MEDIA_TYPE_TAR)
        except DockyardError:
            pass
        assert snapshot_outside(outside) == before
        assert sorted(os.listdir(tmp)) == ["outside", "root"]
