"""NamespacedContent (reference §4.2) over a real meta.db and LocalStore."""

from __future__ import annotations

import io
import itertools
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.content.metadata import INGEST_EXPIRY_NS
from actors.metadata.db import now_ns
from tests.content.content_helpers import tree
from tests.content.namespaced_helpers import (
    add_lease, blob_stat, commit, ingest_row, lease_resources, make_store, sha256,
)
from wire import errdefs

DATA = b"the quick brown fox jumps over the lazy dog\n" * 1000


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path)
    yield s
    s.db.close()


async def test_commit_info_list_read_and_event(store):
    digest = await commit(store, "a", "r1", DATA, labels={"k": "v"})
    assert digest == sha256(DATA)
    info = await store.info("a", digest)
    assert (info.digest, info.size, info.labels) == (digest, len(DATA), {"k": "v"})
    assert info.created_at == info.updated_at > 0
    assert [i.digest for i in await store.list("a")] == [digest]
    reader = await store.reader("a", digest)
    with reader:
        assert reader.read_at(0, len(DATA)) == DATA
    assert store.events.published[-1][:2] == ("a", "/content/create")
    assert store.events.published[-1][2].digest == digest and store.events.published[-1][2].size == len(DATA)
    assert ingest_row(store, "a", "r1") is None  # the ingest record is gone with the commit
    assert await store.list_statuses("a") == []


async def test_visibility_is_per_namespace(store):
    digest = await commit(store, "a", "r1", DATA)
    for call in (store.info("b", digest), store.reader("b", digest), store.delete("b", digest),
                 store.update("b", digest, {"x": "y"})):
        with pytest.raises(errdefs.NotFound, match=digest):
            await call
    assert await store.list("b") == []


async def test_second_namespace_shares_bytes_without_rewriting(store):
    digest = await commit(store, "a", "r1", DATA)
    before = blob_stat(store, digest)
    w = await store.writer("b", "r1", total=len(DATA), expected=digest)
    assert w.shared and w.status().offset == len(DATA)  # nothing left to upload
    assert ingest_row(store, "b", "r1")["expected"] == digest
    assert await store.status("b", "r1") == w.status().__class__(
        ref="r1", offset=len(DATA), total=len(DATA), expected=digest,
        started_at=before.st_mtime_ns, updated_at=before.st_atime_ns)
    assert await w.commit(len(DATA), digest) == digest
    after = blob_stat(store, digest)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (await store.info("b", digest)).size == len(DATA)
    assert [n for n, t, _ in store.events.published if t == "/content/create"] == ["a", "b"]


async def test_size_mismatch_means_no_sharing(store):
    digest = await commit(store, "a", "r1", DATA)
    w = await store.writer("b", "r1", total=len(DATA) + 1, expected=digest)
    assert not w.shared
    await w.close()


async def test_isolated_policy_uploads_bytes_but_keeps_the_blob(tmp_path):
    store = make_store(tmp_path, policy="isolated")
    digest = await commit(store, "a", "r1", DATA)
    before = blob_stat(store, digest)
    w = await store.writer("b", "r1", total=len(DATA), expected=digest)
    assert not w.shared and w.status().offset == 0
    await w.write(DATA)
    assert await w.commit(len(DATA), digest) == digest
    after = blob_stat(store, digest)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (await store.info("b", digest)).digest == digest


async def test_shareable_namespace_label_shares_under_isolated_policy(tmp_path):
    store = make_store(tmp_path, policy="isolated")
    digest = await commit(store, "a", "r1", DATA)
    with store.db.write() as tx:
        tx.execute("UPDATE namespaces SET labels = ? WHERE name = 'a'",
                   ('{"containerd.io/namespace.shareable":"true"}',))
    w = await store.writer("b", "r1", total=len(DATA), expected=digest)
    assert w.shared
    await w.close()


async def test_writing_to_a_shared_ingest_copies_the_blob_first(store):
    digest = await commit(store, "a", "r1", DATA)
    w = await store.writer("b", "r2", expected=digest)
    assert w.shared
    await w.write(b"more")  # appends after the stored bytes
    assert w.status().offset == len(DATA) + 4
    assert await w.commit() == sha256(DATA + b"more")
    w = await store.writer("b", "r3", expected=digest)
    await w.write_at(0, b"fresh")  # offset 0 starts over
    assert await w.commit(5) == sha256(b"fresh")


async def test_digest_and_size_mismatch_commit_nothing(store):
    w = await store.writer("a", "r1")
    await w.write(DATA)
    with pytest.raises(errdefs.FailedPrecondition, match="'r1'.*unexpected commit digest"):
        await w.commit(len(DATA), "sha256:" + "0" * 64)
    assert store.backend.list() == [] and await store.list("a") == []
    status = await store.status("a", "r1")  # kept for inspection, like containerd
    assert status.offset == len(DATA) and status.ref == "r1"
    w = await store.writer("a", "r1")
    with pytest.raises(errdefs.FailedPrecondition, match="'r1'.*size"):
        await w.commit(len(DATA) + 1)
    assert store.backend.list() == [] and await store.list("a") == []
    assert ingest_row(store, "a", "r1")["expected"] == ""  # no pin left behind


async def test_two_writers_on_one_ref(store):
    w = await store.writer("a", "r1")
    with pytest.raises(errdefs.Unavailable, match="'r1'"):
        await store.writer("a", "r1")
    other = await store.writer("b", "r1")  # the same ref in another namespace is another ingest
    assert ingest_row(store, "a", "r1")["backend_ref"] != ingest_row(store, "b", "r1")["backend_ref"]
    await other.close()
    await w.close()
    again = await store.writer("a", "r1")  # released by close
    await again.close()


async def test_commit_of_an_existing_blob(store):
    digest = await commit(store, "a", "r1", DATA)
    with pytest.raises(errdefs.AlreadyExists, match=digest):
        await store.writer("a", "r2", expected=digest)
    # Two refs racing with the same bytes: the second commit is AlreadyExists and drops its ingest.
    w = await store.writer("a", "r3")
    await w.write(DATA)
    with pytest.raises(errdefs.AlreadyExists, match=digest):
        await w.commit(len(DATA))
    assert ingest_row(store, "a", "r3") is None
    assert store.events.topics().count("/content/create") == 1
    # ingest() treats "already there" as success and still applies labels.
    assert await store.ingest("a", "r4", DATA, expected=digest, labels={"x": "1"}) == (digest, len(DATA))
    assert (await store.info("a", digest)).labels == {"x": "1"}


INVALID_DIGESTS = ["", "sha256:abc", "sha256:" + "A" * 64, "md5:" + "0" * 32, "sha256:../../etc/passwd",
                   "../" + "0" * 64, "sha256:" + "0" * 63 + "\x00"]
HOSTILE_REFS = ["", "../x", "a/../../b", "/etc/passwd", "a\x00b", "a\nb", "..", "."]


@pytest.mark.parametrize("digest", INVALID_DIGESTS)
async def test_invalid_digests_are_invalid_argument(store, tmp_path, digest):
    before = tree(tmp_path)
    calls = [store.info("a", digest), store.reader("a", digest), store.delete("a", digest),
             store.update("a", digest, {})]
    if digest:  # an empty expected digest means "none declared"
        calls.append(store.writer("a", "r1", expected=digest))
    for call in calls:
        with pytest.raises(errdefs.InvalidArgument):
            await call
    assert tree(tmp_path) == before


@pytest.mark.parametrize("ref", HOSTILE_REFS)
async def test_hostile_refs_are_invalid_argument_and_touch_nothing(store, tmp_path, ref):
    before = tree(tmp_path)
    for call in (store.writer("a", ref), store.status("a", ref), store.abort("a", ref),
                 store.ingest("a", ref, b"x")):
        with pytest.raises(errdefs.InvalidArgument):
            await call
    assert tree(tmp_path) == before
    with store.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM ingests").fetchone()[0] == 0


async def test_update_masks(store):
    digest = await commit(store, "a", "r1", DATA, labels={"a": "1", "b": "2"})
    assert (await store.update("a", digest, {"a": "9", "c": "3"}, ["labels.a"])).labels == {"a": "9", "b": "2"}
    assert (await store.update("a", digest, {}, ["labels.b"])).labels == {"a": "9"}  # absent/"" deletes
    assert (await store.update("a", digest, {"z": "1"}, ["labels"])).labels == {"z": "1"}
    assert (await store.update("a", digest, {"y": "2", "gone": ""})).labels == {"y": "2"}  # no mask: replace all
    with pytest.raises(errdefs.InvalidArgument, match="'size'"):
        await store.update("a", digest, {}, ["size"])
    with pytest.raises(errdefs.InvalidArgument, match="4096"):
        await store.update("a", digest, {"k": "v" * 5000}, ["labels.k"])
    info = await store.info("a", digest)
    assert info.labels == {"y": "2"} and info.updated_at > info.created_at


async def test_filters(store):
    one = await commit(store, "a", "r1", b"one", labels={"kind": "x", "containerd.io/gc.root": "1"})
    two = await commit(store, "a", "r2", b"two", labels={"kind": "y"})
    digests = lambda infos: sorted(i.digest for i in infos)  # noqa: E731
    assert digests(await store.list("a", [f"digest=={one}"])) == [one]
    assert digests(await store.list("a", ["labels.kind==y"])) == [two]
    assert digests(await store.list("a", ['labels."containerd.io/gc.root"'])) == [one]
    assert digests(await store.list("a", ["labels.kind==x", "labels.kind==y"])) == sorted([one, two])
    assert await store.list("a", ["size==3"]) == []  # size is not filterable
    with pytest.raises(errdefs.InvalidArgument):
        await store.list("a", ["labels.kind=="])
    for ref in ("layer-1", "layer-2", "config-1"):
        w = await store.writer("a", ref)
        await w.write(b"partial")
        await w.close()
    assert [s.ref for s in await store.list_statuses("a", ['ref~="^layer-"'])] == ["layer-1", "layer-2"]
    assert [s.ref for s in await store.list_statuses("b")] == []


async def test_delete_is_logical_and_marks_dirty(store):
    digest = await commit(store, "a", "r1", DATA)
    await commit(store, "b", "r1", DATA)
    seen = []
    store.db.add_listener(seen.append)
    await store.delete("a", digest)
    assert seen == [True]
    assert store.backend.exists(digest)  # bytes stay until GC finds nobody using them
    assert store.events.published[-1][:2] == ("a", "/content/delete")
    assert (await store.info("b", digest)).digest == digest
    with pytest.raises(errdefs.NotFound):
        await store.delete("a", digest)


async def test_leases_hold_ingests_and_commits(store):
    add_lease(store, "a", "L")
    with pytest.raises(errdefs.NotFound, match="lease 'nope'"):
        await store.writer("a", "r1", lease="nope")
    w = await store.writer("a", "r1", lease="L")
    assert lease_resources(store, "a", "L") == {("ingests", "r1")}
    assert ingest_row(store, "a", "r1")["expire_at"] == 0  # the lease protects it, not a deadline
    await w.write(DATA)
    digest = await w.commit(len(DATA))
    assert lease_resources(store, "a", "L") == {("content", digest)}
    # Content already there joins the lease of whoever asks for it again.
    add_lease(store, "a", "M")
    with pytest.raises(errdefs.AlreadyExists):
        await store.writer("a", "r2", expected=digest, lease="M")
    assert lease_resources(store, "a", "M") == {("content", digest)}
    await store.delete("a", digest, lease="M")
    assert lease_resources(store, "a", "M") == set()


async def test_unleased_ingest_expires_after_a_day(store):
    start = now_ns()
    w = await store.writer("a", "r1")
    await w.close()
    expire_at = ingest_row(store, "a", "r1")["expire_at"]
    assert start + INGEST_EXPIRY_NS <= expire_at <= now_ns() + INGEST_EXPIRY_NS


async def test_commit_record_and_lease_land_in_one_transaction(store):
    """Content ingested under a lease is never unprotected: after every committed write,
    each content record of the namespace is held by the lease (or its ingest is)."""
    add_lease(store, "a", "L")
    violations = []

    def check(_deleted: bool) -> None:
        with store.db.read() as conn:
            for row in conn.execute("SELECT digest FROM content WHERE namespace = 'a'"):
                if not conn.execute("SELECT 1 FROM lease_resources WHERE namespace = 'a' AND lease = 'L' "
                                    "AND type = 'content' AND id = ?", (row["digest"],)).fetchone():
                    violations.append(row["digest"])

    store.db.add_listener(check)
    for i in range(5):
        await commit(store, "a", f"r{i}", DATA + bytes([i]), lease="L")
    assert violations == []
    assert len(lease_resources(store, "a", "L")) == 5


async def test_reader_survives_delete_of_the_blob(store):
    data = os.urandom(3 << 20)
    digest = await commit(store, "a", "r1", data)
    reader = await store.reader("a", digest)
    with reader:
        first = reader.read_at(0, 1 << 20)
        await store.delete("a", digest)
        store.backend.delete(digest)  # what GC does to bytes nobody names
        assert not store.backend.exists(digest)
        rest = reader.read_at(1 << 20, 2 << 20)
    assert first + rest == data


async def test_abort(store):
    w = await store.writer("a", "r1")
    await w.write(b"partial")
    with pytest.raises(errdefs.Unavailable):
        await store.abort("a", "r1")  # a writer holds it
    await w.close()
    await store.abort("a", "r1")
    assert ingest_row(store, "a", "r1") is None and store.backend.statuses() == []
    with pytest.raises(errdefs.NotFound):
        await store.abort("a", "r1")
    with pytest.raises(errdefs.NotFound):
        await store.status("a", "r1")


async def test_resume_after_close(store):
    w = await store.writer("a", "r1", total=len(DATA))
    await w.write(DATA[:1000])
    await w.close()
    w = await store.writer("a", "r1", total=len(DATA))
    assert w.status().offset == 1000
    with pytest.raises(errdefs.OutOfRange):
        await w.write_at(999, DATA[999:])
    await w.write_at(1000, DATA[1000:])
    assert await w.commit(len(DATA), sha256(DATA)) == sha256(DATA)


async def test_ingest_from_a_file_object(store):
    digest, size = await store.ingest("a", "r1", io.BytesIO(DATA), size=len(DATA), labels={"k": "v"})
    assert (digest, size) == (sha256(DATA), len(DATA))
    assert (await store.info("a", digest)).labels == {"k": "v"}
    # A stale partial ingest of the same ref is restarted, not appended to.
    w = await store.writer("a", "r2")
    await w.write(b"garbage")
    await w.close()
    assert await store.ingest("a", "r2", b"clean") == (sha256(b"clean"), 5)


_REFS = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=6))
async def test_any_split_with_resumes_commits_the_right_digest(store, data, cuts):
    ref = f"prop-{next(_REFS)}"
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for start, end in zip(points, points[1:]):
        w = await store.writer("p", ref)
        assert w.status().offset == start
        await w.write_at(start, data[start:end])
        await w.close()
    w = await store.writer("p", ref)
    try:
        digest = await w.commit(len(data), sha256(data))
    except errdefs.AlreadyExists:
        digest = sha256(data)
    assert digest == sha256(data)
    with await store.reader("p", digest) as r:
        assert r.read_at(0, len(data)) == data
