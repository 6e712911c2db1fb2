"""Writes that land while marking runs (outside the lock) are seen by the sweep: what they create or
reference survives, while garbage untouched by them still goes."""

from __future__ import annotations

import trio

import actors.gc.collector as collector_mod
from actors.gc import Collector
from actors.metadata.db import dump_labels
from tests.gc.gc_helpers import add_content, add_lease, add_resource, add_snapshot, fake_digest, rows
from tests.gc.test_gc_collect import remaining

NS = "default"
A, B, C, D, E = (fake_digest(x) for x in "abcde")


def during_marking(monkeypatch, write) -> None:
    """Run ``write()`` on the Trio thread after the snapshot was marked, before the sweep."""
    original = collector_mod._mark_snapshot

    def marked_then_written(reader):
        marking = original(reader)
        trio.from_thread.run_sync(write)
        return marking

    monkeypatch.setattr(collector_mod, "_mark_snapshot", marked_then_written)


async def test_content_committed_under_a_new_lease_while_marking_survives(db, metadata, monkeypatch):
    add_content(db, NS, A)  # garbage before and after

    def commit_under_lease():
        add_lease(db, NS, "pull")
        add_content(db, NS, B, {"containerd.io/gc.ref.content.l.0": C})
        add_resource(db, NS, "pull", "content", B)

    add_content(db, NS, C)  # white in the snapshot; the new B references it
    during_marking(monkeypatch, commit_under_lease)
    report = await Collector(metadata).collect()
    assert {(r.kind, r.id) for r in report.removed} == {("content", A)}
    assert ("content", NS, B) in remaining(db) and ("content", NS, C) in remaining(db)


async def test_resource_added_to_an_existing_lease_while_marking_survives(db, metadata, monkeypatch):
    add_lease(db, NS, "L")
    add_content(db, NS, A, {"containerd.io/gc.ref.content": B})
    add_content(db, NS, B)
    during_marking(monkeypatch, lambda: add_resource(db, NS, "L", "content", A))
    report = await Collector(metadata).collect()
    assert report.removed == []


async def test_label_added_to_a_kept_object_while_marking_revives_its_target(db, metadata, monkeypatch):
    add_content(db, NS, A, {"containerd.io/gc.root": ""})
    add_content(db, NS, B, {"containerd.io/gc.ref.content": C})  # white, and so is C
    add_content(db, NS, C)
    add_content(db, NS, D)

    def label_a():
        with db.write() as tx:
            tx.execute("UPDATE content SET labels = ? WHERE namespace = ? AND digest = ?",
                       (dump_labels({"containerd.io/gc.root": "", "containerd.io/gc.ref.content": B}), NS, A))

    during_marking(monkeypatch, label_a)
    report = await Collector(metadata).collect()
    assert {r.id for r in report.removed} == {D}


async def test_flat_kept_object_referenced_fully_while_marking_gets_its_labels_followed(db, metadata, monkeypatch):
    add_lease(db, NS, "flat", {"containerd.io/gc.flat": ""})
    add_content(db, NS, A, {"containerd.io/gc.ref.content": B})
    add_content(db, NS, B)
    add_resource(db, NS, "flat", "content", A)
    add_lease(db, NS, "full")

    during_marking(monkeypatch, lambda: add_resource(db, NS, "full", "content", A))
    report = await Collector(metadata).collect()
    assert report.removed == []


async def test_snapshot_child_prepared_on_a_white_parent_while_marking_keeps_the_parent(db, metadata, monkeypatch):
    add_snapshot(db, NS, "native", "base")
    add_snapshot(db, NS, "native", "mid", parent="base")
    add_snapshot(db, NS, "native", "junk")

    def prepare_child():
        add_lease(db, NS, "L")
        add_snapshot(db, NS, "native", "work", parent="mid")
        add_resource(db, NS, "L", "snapshots/native", "work")

    during_marking(monkeypatch, prepare_child)
    report = await Collector(metadata).collect()
    assert {r.id for r in report.removed} == {"native/junk"}


async def test_records_deleted_by_their_owner_meanwhile_are_not_reported(db, metadata, monkeypatch):
    add_content(db, NS, A)
    add_content(db, NS, B)

    def delete_a():
        with db.write() as tx:
            tx.execute("DELETE FROM content WHERE digest = ?", (A,))

    during_marking(monkeypatch, delete_a)
    report = await Collector(metadata).collect()
    assert {r.id for r in report.removed} == {B}
    assert [t for t in metadata.events.topics() if t[2]["digest"] == A] == []


async def test_no_change_log_left_running_after_a_run_or_a_failed_one(db, metadata, monkeypatch):
    add_content(db, NS, A)
    await Collector(metadata).collect()

    def boom(reader):
        reader.close()
        raise RuntimeError("mark failed")

    monkeypatch.setattr(collector_mod, "_mark_snapshot", boom)
    try:
        await Collector(metadata).collect()
    except RuntimeError:
        pass
    add_content(db, NS, B)
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM temp.gc_active").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM temp.gc_changes").fetchone()[0] == 0
    assert rows(db, "content", "digest") == {(B,)}


async def test_dry_runs_and_explains_run_beside_writes(db, metadata):
    for i in range(200):
        add_content(db, NS, fake_digest(f"x{i}"))
    collector = Collector(metadata)

    async def writer():
        for i in range(50):
            add_content(db, NS, fake_digest(f"y{i}"))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        report = await collector.collect(dry_run=True)
    assert len(report.removed) >= 200
    assert len(rows(db, "content", "digest")) == 250


async def test_writes_between_sweep_transactions_are_seen_by_the_next_one(db, metadata, monkeypatch):
    import actors.gc.sweep as sweep_mod

    monkeypatch.setattr(sweep_mod, "CHUNK", 2)
    white = sorted(fake_digest(f"w{i}") for i in range(6))
    for digest in white:
        add_content(db, NS, digest)
    chunks = []

    class LeaseAfterFirstChunk(Collector):
        def _publish(self, removed):
            super()._publish(removed)
            chunks.append([n.key for n in removed])
            if len(chunks) == 1:  # after the first transaction committed: someone leases the last white blob
                add_lease(db, NS, "late")
                add_resource(db, NS, "late", "content", white[-1])

    collector = LeaseAfterFirstChunk(metadata)
    report = await collector.collect()
    assert chunks == [white[0:2], white[2:4], white[4:5]]
    assert {r.id for r in report.removed} == set(white[:-1])
    assert rows(db, "content", "digest") == {(white[-1],)}
    with db.read() as conn:
        assert conn.execute("SELECT count(*) FROM temp.gc_active").fetchone()[0] == 0
