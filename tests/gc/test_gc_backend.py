"""The backend phase over a real LocalStore and a real native snapshotter: what no namespace names
goes (blobs, ingests, snapshots leaves first), what any namespace names stays."""

from __future__ import annotations

import os

import pytest

from actors.content import LocalStore
from actors.gc import Collector
from actors.metadata.db import now_ns
from actors.snapshots import NativeSnapshotter
from tests.gc.gc_helpers import (
    FakeMetadata, add_content, add_ingest, add_lease, add_resource, add_snapshot, digest_of, rows,
)


def put_blob(store: LocalStore, data: bytes) -> str:
    w = store.writer("ref-" + digest_of(data))
    try:
        w.write(data)
        return w.commit(len(data), digest_of(data))
    finally:
        w.close()


@pytest.fixture
def store(tmp_path):
    return LocalStore(str(tmp_path / "content"))


@pytest.fixture
def native(tmp_path):
    sn = NativeSnapshotter(str(tmp_path / "native"))
    yield sn
    sn.close()


def blobs(store) -> set[str]:
    return {b.digest for b in store.list()}


async def test_blobs_no_namespace_names_are_deleted(db, store):
    kept_by_b, orphan, expected_by_ingest, unreferenced = (put_blob(store, x) for x in (b"1", b"2", b"3", b"4"))
    add_lease(db, "b", "L")
    add_content(db, "a", kept_by_b)  # garbage in a ...
    add_content(db, "b", kept_by_b)  # ... but leased in b: the shared bytes stay
    add_resource(db, "b", "L", "content", kept_by_b)
    add_ingest(db, "a", "pull", expected=expected_by_ingest, expire_at=now_ns() + 10**12)
    add_content(db, "a", unreferenced)
    report = await Collector(FakeMetadata(db=db, content=store)).collect()
    assert blobs(store) == {kept_by_b, expected_by_ingest}
    assert {(r.kind, r.id) for r in report.backend} == {("blob", orphan), ("blob", unreferenced)}
    assert {(r.kind, r.namespace, r.id) for r in report.removed} == {("content", "a", kept_by_b),
                                                                     ("content", "a", unreferenced)}


async def test_backend_ingests_without_a_record_are_aborted(db, store):
    live = store.writer("a/1/live")
    live.write(b"partial")
    live.close()
    stray = store.writer("a/2/stray")
    stray.write(b"left by a crash")
    stray.close()
    add_lease(db, "a", "L")
    add_ingest(db, "a", "live", backend_ref="a/1/live")
    add_resource(db, "a", "L", "ingests", "live")
    report = await Collector(FakeMetadata(db=db, content=store)).collect()
    assert {s.ref for s in store.statuses()} == {"a/1/live"}
    assert [(r.kind, r.id) for r in report.backend] == [("ingest", "a/2/stray")]


async def test_an_open_writer_is_never_aborted(db, store):
    w = store.writer("a/3/busy")
    try:
        w.write(b"x")
        await Collector(FakeMetadata(db=db, content=store)).collect()
        assert {s.ref for s in store.statuses()} == {"a/3/busy"}
    finally:
        w.close()


async def test_objects_newer_than_the_run_are_left_for_the_next_one(db, store, monkeypatch):
    import actors.gc.collector as collector_mod

    digest = put_blob(store, b"old enough?")
    monkeypatch.setattr(collector_mod, "now_ns", lambda: 0)  # the run "started" before every object
    report = await Collector(FakeMetadata(db=db, content=store)).collect()
    assert report.backend == [] and blobs(store) == {digest}


async def test_backend_snapshots_unnamed_go_leaves_first_then_cleanup(db, native):
    native.prepare("a/1/base")
    native.commit("a/2/base", "a/1/base")
    native.prepare("a/3/mid", "a/2/base")
    native.commit("a/4/mid", "a/3/mid")
    native.prepare("a/5/top", "a/4/mid")
    native.prepare("a/6/other", "a/2/base")
    add_lease(db, "a", "L")
    add_snapshot(db, "a", "native", "base", backend_key="a/2/base")
    add_snapshot(db, "a", "native", "other", parent="base", backend_key="a/6/other")
    add_resource(db, "a", "L", "snapshots/native", "other")
    report = await Collector(FakeMetadata(db=db, snapshotters={"native": native})).collect()
    left: list = []
    native.walk(left.append)
    assert {i.name for i in left} == {"a/2/base", "a/6/other"}
    assert [r.id for r in report.backend] == ["native/a/5/top", "native/a/4/mid"]
    storage = os.listdir(native.snapshots_dir)  # cleanup() reclaimed the removed snapshots' directories
    assert len(storage) == 2 and all(name.isdigit() for name in storage)


async def test_record_deleted_in_one_namespace_keeps_backend_named_by_another(db, native):
    native.prepare("a/1/shared")
    native.commit("a/2/shared", "a/1/shared")
    add_lease(db, "b", "L")
    add_snapshot(db, "a", "native", "layer", backend_key="a/2/shared")
    add_snapshot(db, "b", "native", "layer", backend_key="a/2/shared")
    add_resource(db, "b", "L", "snapshots/native", "layer")
    report = await Collector(FakeMetadata(db=db, snapshotters={"native": native})).collect()
    assert [(r.namespace, r.id) for r in report.removed] == [("a", "native/layer")]
    assert report.backend == []
    assert native.stat("a/2/shared").name == "a/2/shared"


async def test_dry_run_lists_backend_objects_and_deletes_nothing(db, store, native):
    digest = put_blob(store, b"lonely")
    add_content(db, "a", digest)
    native.prepare("a/1/s")
    report = await Collector(FakeMetadata(db=db, content=store, snapshotters={"native": native})).collect(True)
    assert {(r.kind, r.id) for r in report.backend} == {("blob", digest), ("snapshot", "native/a/1/s")}
    assert blobs(store) == {digest}
    assert rows(db, "content", "digest") == {(digest,)}
