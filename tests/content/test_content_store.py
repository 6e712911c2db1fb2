"""LocalStore: blobs, reads, ingest listing, validation, on-disk layout."""

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import actors.content
from actors.content import LocalStore, clamp_range
from actors.content.timestamps import format_rfc3339_nano, parse_rfc3339_nano
from content_helpers import commit_bytes, sha256, tree
from wire.errdefs import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unavailable,
)

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def blob(store):
    return commit_bytes(store, "ref", DATA)


def test_layout_of_blobs_and_ingests(store, root):
    w = store.writer("layer-sha256:abc", total=7, expected=sha256(b"1234567"))
    w.write(b"123")
    w.close()
    name = hashlib.sha256(b"layer-sha256:abc").hexdigest()
    ingest = os.path.join(root, "ingest", name)
    assert sorted(os.listdir(ingest)) == ["data", "expected", "ref", "startedat", "total", "updatedat"]
    read = lambda f: open(os.path.join(ingest, f)).read()  # noqa: E731
    assert read("ref") == "layer-sha256:abc"
    assert read("total") == "7"
    assert read("expected") == sha256(b"1234567")
    assert read("startedat").endswith("Z") and parse_rfc3339_nano(read("startedat")) > 0
    assert open(os.path.join(ingest, "data"), "rb").read() == b"123"
    w = store.writer("layer-sha256:abc")
    w.write(b"4567")
    digest = w.commit(7)
    assert os.path.isfile(os.path.join(root, "blobs", "sha256", digest[7:]))
    assert os.listdir(os.path.join(root, "ingest")) == []


def test_info_exists_and_missing(store, blob):
    info = store.info(blob)
    assert (info.digest, info.size) == (blob, len(DATA))
    assert store.exists(blob)
    missing = sha256(b"nope")
    assert not store.exists(missing)
    with pytest.raises(NotFound, match=missing):
        store.info(missing)
    with pytest.raises(NotFound):
        store.reader(missing)
    with pytest.raises(NotFound):
        store.read_range(missing)


@pytest.mark.parametrize(
    "offset, size, want",
    [
        (0, 0, DATA),
        (-5, 0, DATA),  # negative offset reads from 0
        (-5, 3, DATA[:3]),
        (10, 5, DATA[10:15]),
        (10, -1, DATA[10:]),  # size <= 0: to the end
        (10_000, 1_000, DATA[10_000:]),  # past the end: to the end
        (len(DATA), 0, b""),
        (len(DATA), 5, b""),
    ],
)
def test_read_range(store, blob, offset, size, want):
    assert store.read_range(blob, offset, size) == want


def test_read_range_beyond_size_is_out_of_range(store, blob):
    with pytest.raises(OutOfRange, match=str(len(DATA))):
        store.read_range(blob, len(DATA) + 1, 1)


@given(size=st.integers(0, 100), offset=st.integers(-200, 200), want=st.integers(-200, 200))
def test_clamp_range_matches_slicing(size, offset, want):
    data = bytes(range(size))
    if offset > size:
        with pytest.raises(OutOfRange):
            clamp_range(size, offset, want)
        return
    start, length = clamp_range(size, offset, want)
    expected = data[max(offset, 0):] if want <= 0 else data[max(offset, 0):max(offset, 0) + want]
    assert data[start:start + length] == expected


def test_reader_read_at(store, blob):
    with store.reader(blob) as r:
        assert r.size == len(DATA)
        assert r.read_at(0, 4) == DATA[:4]
        assert r.read_at(len(DATA) - 2, 10) == DATA[-2:]  # short at the end
        assert r.read_at(len(DATA), 10) == b""
        with pytest.raises(OutOfRange):
            r.read_at(len(DATA) + 1, 1)
        with pytest.raises(InvalidArgument):
            r.read_at(-1, 1)
    assert r.closed
    with pytest.raises(FailedPrecondition):
        r.read_at(0, 1)


def test_delete_under_an_open_reader_keeps_its_stream_whole(store, blob):
    r = store.reader(blob)
    try:
        store.delete(blob)
        assert not store.exists(blob)
        assert r.read_at(0, len(DATA)) == DATA
        assert hashlib.sha256(b"".join(r.read_at(o, 1000) for o in range(0, len(DATA), 1000))).hexdigest() == blob[7:]
    finally:
        r.close()
    with pytest.raises(NotFound):
        store.delete(blob)


def test_walk_and_list_skip_foreign_files(store, root, blob):
    other = commit_bytes(store, "ref2", b"other")
    # Files that are not blobs are ignored, whatever they are.
    open(os.path.join(root, "blobs", "sha256", "not-a-digest"), "w").close()
    os.makedirs(os.path.join(root, "blobs", "md5"))
    open(os.path.join(root, "blobs", "md5", "0" * 32), "w").close()
    os.mkdir(os.path.join(root, "blobs", "sha256", "f" * 64))
    seen = []
    store.walk(seen.append)
    assert sorted(i.digest for i in seen) == sorted([blob, other])
    assert {i.digest: i.size for i in store.list()} == {blob: len(DATA), other: 5}


def test_statuses_status_and_abort(store):
    assert store.statuses() == []
    a = store.writer("a", total=3)
    a.write(b"xy")
    b = store.writer("b/with/slashes")
    b.close()
    assert {s.ref: s.offset for s in store.statuses()} == {"a": 2, "b/with/slashes": 0}
    assert store.status("a").offset == 2 and store.status("a").total == 3
    with pytest.raises(Unavailable):
        store.abort("a")  # a writer holds it
    a.close()
    store.abort("a")
    with pytest.raises(NotFound, match="'a'"):
        store.status("a")
    with pytest.raises(NotFound):
        store.abort("a")
    store.abort("b/with/slashes")
    assert store.statuses() == []
    store.writer("a").close()  # abort released its lock


def test_stale_tmp_ingest_dirs_are_dropped_at_open(root):
    LocalStore(root)
    stale = os.path.join(root, "ingest", ".tmp-crashed")
    os.mkdir(stale)
    open(os.path.join(stale, "ref"), "w").close()
    store = LocalStore(root)
    assert not os.path.exists(stale)
    assert store.statuses() == []


BAD_DIGESTS = [
    "", "sha256", "sha256:", "sha256:abc", "SHA256:" + "a" * 64, "sha256:" + "A" * 64,
    "sha256:" + "a" * 63, "sha256:" + "a" * 65, "sha256:../../../../etc/passwd",
    "sha256:" + "a" * 63 + "/", "md5:" + "a" * 32, "sha256:" + "a" * 64 + "\n",
    "../sha256:" + "a" * 64, "sha256:" + "a" * 60 + "\x00aaa", None, 42, b"sha256:" + b"a" * 64,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digests_are_invalid_argument(store, tmp_path, digest):
    before = tree(tmp_path)
    calls = [store.info, store.reader, store.read_range, store.delete, store.blob_path, store.exists]
    if digest:  # an empty expected digest means "none given"
        calls.append(lambda d: store.writer("ref", expected=d))
    for call in calls:
        with pytest.raises(InvalidArgument):
            call(digest)
    assert tree(tmp_path) == before


HOSTILE_REFS = ["", "../x", "a/../../x", "/abs", "/etc/passwd", "nul\x00ref", ".", "..",
                "a/./b", "tab\tref", "new\nline", "x" * 5000, "\udcff", None, 7, b"bytes"]


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_hostile_refs_are_invalid_argument_and_touch_nothing(store, tmp_path, ref):
    before = tree(tmp_path)
    parent_before = set(os.listdir(tmp_path.parent))
    for call in (store.writer, store.status, store.abort):
        with pytest.raises(InvalidArgument):
            call(ref)
    assert tree(tmp_path) == before
    assert set(os.listdir(tmp_path.parent)) == parent_before


@given(ref=st.text(min_size=1, max_size=40))
def test_any_accepted_ref_stays_inside_the_ingest_dir(tmp_path_factory, ref):
    store = LocalStore(str(tmp_path_factory.mktemp("refs")))
    try:
        w = store.writer(ref)
    except InvalidArgument:
        return
    w.write(b"z")
    w.close()
    (name,) = os.listdir(store.ingest_root)
    assert name == hashlib.sha256(ref.encode()).hexdigest()
    assert store.status(ref).ref == ref
    store.abort(ref)


@given(ns=st.integers(0, 2**62))
def test_rfc3339_nano_round_trips(ns):
    text = format_rfc3339_nano(ns)
    assert parse_rfc3339_nano(text) == ns


def test_rfc3339_parses_offsets_like_go_writes_them():
    assert parse_rfc3339_nano("1970-01-01T01:00:00.5+01:00") == 500_000_000
    assert parse_rfc3339_nano("2024-05-01T10:00:00Z") == 1714557600 * 10**9


def test_package_exports_are_honest():
    for name in actors.content.__all__:
        assert getattr(actors.content, name).__module__.startswith("actors.content")
    assert sorted(actors.content.__all__) == actors.content.__all__
