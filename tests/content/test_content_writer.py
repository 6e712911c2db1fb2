"""Writer lifecycle: write, resume, commit outcomes, locking."""

import hashlib
import os
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.content import LocalStore, WriterState
from actors.content import writer as writer_module
from actors.content.ingest import IngestDir
from content_helpers import blob_files, commit_bytes, sha256
from wire.errdefs import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotImplemented_,
    OutOfRange,
    Unavailable,
)


def test_write_commit_happy_path(store):
    data = b"hello, content"
    w = store.writer("ref-1", total=len(data), expected=sha256(data))
    assert w.write(data[:5]) == 5
    assert w.write(memoryview(data)[5:]) == len(data) - 5
    st_ = w.status()
    assert (st_.ref, st_.offset, st_.total, st_.expected) == ("ref-1", len(data), len(data), sha256(data))
    assert w.digest() == sha256(data)
    assert w.commit(len(data), sha256(data)) == sha256(data)
    assert w.state is WriterState.COMMITTED
    assert blob_files(store) == {sha256(data): data}
    assert store.statuses() == []
    assert os.listdir(store.ingest_root) == []


def test_running_digest_tracks_each_write(store):
    with store.writer("ref") as w:
        assert w.digest() == sha256(b"")
        w.write(b"ab")
        assert w.digest() == sha256(b"ab")
        w.write(b"c")
        assert w.digest() == sha256(b"abc")


def test_large_writes_take_the_parallel_path_and_hash_right(store):
    data = os.urandom(3 * writer_module.PARALLEL_MIN + 17)
    with store.writer("big") as w:
        w.write(data[:writer_module.PARALLEL_MIN])  # parallel
        w.write(data[writer_module.PARALLEL_MIN:writer_module.PARALLEL_MIN + 5])  # sequential
        w.write(data[writer_module.PARALLEL_MIN + 5:])  # parallel
        assert w.commit(len(data)) == sha256(data)
    assert store.read_range(sha256(data)) == data


def test_committed_blob_is_read_only_with_commit_times(store):
    data = b"x" * 100
    digest = commit_bytes(store, "ref", data)
    mode = os.stat(store.blob_path(digest)).st_mode
    assert stat.S_IMODE(mode) & 0o222 == 0
    info = store.info(digest)
    assert info.size == 100 and info.created_at == info.updated_at > 0


def test_close_keeps_ingest_and_reopen_resumes(store):
    data = os.urandom(10_000)
    w = store.writer("ref", total=len(data))
    w.write(data[:4000])
    w.close()
    assert w.state is WriterState.CLOSED
    (status,) = store.statuses()
    assert (status.ref, status.offset, status.total) == ("ref", 4000, len(data))
    w2 = store.writer("ref")  # total remembered
    assert w2.offset == 4000
    assert w2.status().total == len(data)
    assert w2.status().started_at == status.started_at
    assert w2.digest() == sha256(data[:4000])  # re-hashed from disk
    w2.write(data[4000:])
    assert w2.commit(len(data), sha256(data)) == sha256(data)


def test_reopen_with_other_total_recreates_ingest(store):
    w = store.writer("ref", total=10)
    w.write(b"12345")
    w.close()
    w = store.writer("ref", total=20)
    assert w.offset == 0 and w.status().total == 20
    w.close()


def test_reopen_with_other_expected_recreates_ingest(store):
    w = store.writer("ref", expected=sha256(b"a"))
    w.write(b"a")
    w.close()
    w = store.writer("ref", expected=sha256(b"b"))
    assert w.offset == 0 and w.status().expected == sha256(b"b")
    w.close()


def test_ingest_with_foreign_ref_file_is_recreated(store):
    w = store.writer("ref")
    w.write(b"abc")
    w.close()
    ingest_dir = os.path.join(store.ingest_root, os.listdir(store.ingest_root)[0])
    with open(os.path.join(ingest_dir, "ref"), "w") as f:
        f.write("someone-else")
    w = store.writer("ref")
    assert w.offset == 0
    with open(os.path.join(ingest_dir, "ref")) as f:
        assert f.read() == "ref"
    w.close()


def test_write_at_current_offset_appends_other_offsets_are_out_of_range(store):
    with store.writer("ref") as w:
        w.write_at(0, b"abc")
        w.write_at(3, b"def")
        with pytest.raises(OutOfRange, match="offset 2"):
            w.write_at(2, b"x")
        with pytest.raises(OutOfRange):
            w.write_at(7, b"x")
        assert w.offset == 6 and w.digest() == sha256(b"abcdef")


def test_write_at_zero_with_progress_restarts(store):
    with store.writer("ref") as w:
        w.write(b"garbage")
        w.write_at(0, b"good")
        assert w.offset == 4
        assert w.commit(4) == sha256(b"good")
    assert store.read_range(sha256(b"good")) == b"good"


def test_truncate_only_to_zero(store):
    with store.writer("ref") as w:
        w.write(b"abc")
        with pytest.raises(NotImplemented_):
            w.truncate(1)
        assert w.offset == 3
        w.truncate(0)
        assert w.offset == 0 and w.digest() == sha256(b"")
        w.write(b"z")
        assert w.commit(1) == sha256(b"z")


def test_size_mismatch_is_failed_precondition_and_keeps_ingest(store):
    w = store.writer("ref")
    w.write(b"abc")
    with pytest.raises(FailedPrecondition, match=r"size 3, expected 4"):
        w.commit(4)
    assert w.state is WriterState.CLOSED
    assert blob_files(store) == {}
    assert [s.offset for s in store.statuses()] == [3]
    store.writer("ref").close()  # lock was released


def test_digest_mismatch_is_failed_precondition_and_keeps_ingest(store):
    w = store.writer("ref")
    w.write(b"abc")
    with pytest.raises(FailedPrecondition) as err:
        w.commit(3, sha256(b"abd"))
    assert sha256(b"abc") in err.value.message and sha256(b"abd") in err.value.message
    assert blob_files(store) == {}
    assert [s.offset for s in store.statuses()] == [3]
    w2 = store.writer("ref")
    assert w2.offset == 3
    w2.close()


def test_expected_given_at_open_is_checked_at_commit(store):
    w = store.writer("ref", expected=sha256(b"right"))
    w.write(b"wrong")
    with pytest.raises(FailedPrecondition):
        w.commit(5)
    assert blob_files(store) == {}


def test_size_zero_at_commit_is_not_checked(store):
    with store.writer("ref") as w:
        w.write(b"abc")
        assert w.commit(0) == sha256(b"abc")


def test_empty_blob(store):
    with store.writer("ref") as w:
        assert w.commit(0, sha256(b"")) == sha256(b"")
    assert store.read_range(sha256(b"")) == b""


def test_second_writer_on_a_ref_is_unavailable(store, root):
    w = store.writer("ref")
    with pytest.raises(Unavailable, match="'ref' locked"):
        store.writer("ref")
    with pytest.raises(Unavailable):
        LocalStore(root).writer("ref")  # same root, another store object
    other = store.writer("other-ref")  # other refs are free
    other.close()
    w.close()
    store.writer("ref").close()


def test_lock_released_after_commit_and_by_garbage_collection(store):
    w = store.writer("ref")
    w.write(b"abc")
    w.commit(3)
    w2 = store.writer("ref")
    del w2  # dropped without close: must not keep the ref locked
    import gc

    gc.collect()
    store.writer("ref").close()


def test_open_with_expected_already_stored_is_already_exists(store):
    digest = commit_bytes(store, "first", b"data")
    with pytest.raises(AlreadyExists, match=digest):
        store.writer("second", expected=digest)
    store.writer("second").close()  # and the ref is not left locked
    assert store.statuses()[0].ref == "second"


def test_commit_of_existing_blob_drops_ingest(store):
    digest = commit_bytes(store, "first", b"data")
    w = store.writer("second")
    w.write(b"data")
    with pytest.raises(AlreadyExists, match=digest):
        w.commit(4, digest)
    assert w.state is WriterState.COMMITTED
    assert store.statuses() == []
    assert blob_files(store) == {digest: b"data"}
    store.writer("second").close()


def test_calls_on_a_closed_writer_are_failed_precondition(store):
    w = store.writer("ref")
    w.write(b"a")
    w.close()
    w.close()  # idempotent
    for call in (lambda: w.write(b"b"), lambda: w.write_at(1, b"b"), lambda: w.truncate(0),
                 lambda: w.commit(1), w.status):
        with pytest.raises(FailedPrecondition, match="closed writer"):
            call()
    assert w.digest() == sha256(b"a")


def test_sha512_expected_is_hashed_and_stored_under_sha512(store):
    data = b"five-twelve"
    expected = "sha512:" + hashlib.sha512(data).hexdigest()
    with store.writer("ref", expected=expected) as w:
        w.write(data)
        assert w.commit(len(data)) == expected
    assert store.blob_path(expected).endswith(os.path.join("sha512", expected[7:]))
    assert store.read_range(expected) == data
    assert [i.digest for i in store.list()] == [expected]


def test_commit_rehashes_when_expected_algorithm_differs_from_running_one(store):
    data = b"switch"
    expected = "sha512:" + hashlib.sha512(data).hexdigest()
    with store.writer("ref") as w:
        w.write(data)
        assert w.commit(len(data), expected) == expected


@pytest.mark.parametrize("total", [-1, "10", 1.5])
def test_bad_total_is_invalid_argument(store, total):
    with pytest.raises(InvalidArgument):
        store.writer("ref", total=total)
    store.writer("ref").close()


def test_updatedat_is_not_rewritten_per_write_but_on_close(store, monkeypatch):
    calls = []
    real = IngestDir.set_updated_at
    monkeypatch.setattr(IngestDir, "set_updated_at", lambda self, ns: (calls.append(ns), real(self, ns)))
    w = store.writer("ref")
    for _ in range(50):
        w.write(b"x")
    assert len(calls) <= 1  # at most once per UPDATED_AT_INTERVAL
    last = w.status().updated_at
    w.close()
    assert calls[-1] == last
    assert store.status("ref").updated_at == last


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_random_chunkings_commit_to_sha256_of_the_data(tmp_path, data, cuts):
    store = LocalStore(tempfile.mkdtemp(dir=tmp_path))  # fresh per example
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    w = store.writer("ref")
    for start, end in zip(bounds, bounds[1:]):
        w.write(data[start:end])
    digest = sha256(data)
    assert w.commit(len(data), digest) == digest
    assert store.read_range(digest) == data
    assert blob_files(store) == {digest: data}
