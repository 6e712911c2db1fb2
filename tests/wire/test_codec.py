"""The sans-IO codec: any bytes never crash it; every frame and message round-trips."""

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wire import codec, errdefs
from wire.converter import dumps, loads, structure, unstructure

ids = st.integers(min_value=0, max_value=2**32 - 1)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.text(max_size=20),
                    st.binary(max_size=20), st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
metas = st.builds(codec.Metadata, namespace=st.none() | st.text(max_size=10),
                  lease=st.none() | st.text(max_size=10), deadline=st.none() | st.integers(0, 2**62),
                  fds=st.none() | st.integers(0, codec.MAX_CALL_FDS))
events = st.one_of(
    st.builds(codec.Request, id=ids, method=st.text(min_size=1, max_size=20),
              params=st.dictionaries(st.text(max_size=8), values, max_size=4), meta=metas),
    st.builds(codec.Response, id=ids, error=st.none(), result=values),
    st.builds(codec.Response, id=ids, error=st.sampled_from(list(errdefs.Kind)).map(
        lambda k: errdefs.error_class(k)(f"thing: {k.value}")), result=st.none()),
    st.builds(codec.StreamItem, id=ids, item=values),
    st.builds(codec.StreamEnd, id=ids),
    st.builds(codec.Cancel, id=ids),
    st.builds(codec.Notification, method=st.text(max_size=10).filter(lambda m: not m.startswith("$")),
              params=st.lists(values, max_size=3)),
)


def _same(a, b):
    if isinstance(a, codec.Response) and a.error is not None:
        return (type(b.error) is type(a.error) and b.error.message == a.error.message
                and a.id == b.id)
    return a == b


@given(st.lists(events, min_size=1, max_size=5), st.integers(1, 64))
def test_events_round_trip_through_any_chunking(evs, chunk):
    data = b"".join(codec.encode(e) for e in evs)
    conn = codec.Connection()
    out = []
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i:i + chunk])
        out.extend(conn.events())
    assert len(out) == len(evs)
    assert all(_same(a, b) for a, b in zip(evs, out))


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_never_crash_the_decoder(data):
    conn = codec.Connection(max_frame_size=256)
    try:
        conn.receive_data(data)
        list(conn.events())
    except codec.ProtocolError:
        assert conn.broken
        with pytest.raises(codec.ProtocolError):
            conn.receive_data(b"\x90")


@given(values)
def test_any_msgpack_value_is_a_frame_or_a_protocol_error(value):
    conn = codec.Connection()
    try:
        conn.receive_data(msgpack.packb(value, use_bin_type=True))
        list(conn.events())
    except codec.ProtocolError:
        pass


def test_oversized_frame_is_refused_before_it_is_buffered():
    conn = codec.Connection(max_frame_size=1024)
    huge = codec.encode(codec.Request(id=1, method="X.Y", params={"blob": b"x" * 4096}))
    with pytest.raises(codec.ProtocolError, match="larger than the limit of 1024"):
        conn.receive_data(huge)


@pytest.mark.parametrize("frame", [
    [9, 1, "x", []], [0, -1, "X.Y", [{}]], [0, 1, "", [{}]], [0, 1, "X.Y", [{}, {"bogus": 1}]],
    [0, 1, "X.Y", [{}, {"deadline": "soon"}]], [2, "$item", [1]], [1, True, None, None], "not a frame",
])
def test_malformed_frames_are_protocol_errors(frame):
    conn = codec.Connection()
    conn.receive_data(msgpack.packb(frame))
    with pytest.raises(codec.ProtocolError):
        list(conn.events())


@attrs.frozen(kw_only=True)
class Sample:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)
    size: int = 0
    data: bytes = b""
    parent: str | None = None
    items: list[int] = attrs.Factory(list)


samples = st.builds(Sample, name=st.text(max_size=10),
                    labels=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
                    size=st.integers(-2**63, 2**63 - 1), data=st.binary(max_size=16),
                    parent=st.none() | st.text(max_size=5), items=st.lists(st.integers(0, 100), max_size=4))


@given(samples)
def test_messages_round_trip_through_msgpack(msg):
    assert loads(dumps(msg), Sample) == msg


def test_structure_rejects_unknown_and_mistyped_fields():
    with pytest.raises(errdefs.InvalidArgument, match="extra fields"):
        structure({"name": "a", "nope": 1}, Sample)
    with pytest.raises(errdefs.InvalidArgument, match="name"):
        structure({"name": 5}, Sample)
    assert unstructure(Sample(name="a")) == {"name": "a", "labels": {}, "size": 0, "data": b"",
                                             "parent": None, "items": []}


def test_request_metadata_counts_passed_descriptors():
    frame = codec.encode(codec.Request(id=1, method="A.B", params={}, meta=codec.Metadata(fds=2)))
    conn = codec.Connection()
    conn.receive_data(frame)
    assert next(conn.events()).meta.fds == 2


@pytest.mark.parametrize("fds", [-1, codec.MAX_CALL_FDS + 1, "1", True, 1.0])
def test_a_bad_descriptor_count_is_a_protocol_error(fds):
    conn = codec.Connection()
    conn.receive_data(msgpack.packb([0, 1, "A.B", [{}, {"fds": fds}]]))
    with pytest.raises(codec.ProtocolError, match="metadata fds"):
        list(conn.events())
