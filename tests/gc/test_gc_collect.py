"""What a collection keeps and removes, per root kind and reference kind (rows inserted directly)."""

from __future__ import annotations

import pytest

from actors.gc import Collector
from actors.metadata.db import now_ns
from tests.gc.gc_helpers import (
    add_container, add_content, add_image, add_ingest, add_lease, add_resource, add_sandbox, add_snapshot,
    fake_digest, rows,
)

NS = "default"
PAST = "2001-01-01T00:00:00Z"
FUTURE = "2999-01-01T00:00:00Z"
A, B, C, D = (fake_digest(x) for x in "abcd")


def remaining(db) -> set[tuple[str, str, str]]:
    out = {("content", n, d) for n, d in rows(db, "content", "namespace", "digest")}
    out |= {("image", n, i) for n, i in rows(db, "images", "namespace", "name")}
    out |= {("snapshot", n, f"{s}/{k}") for n, s, k in rows(db, "snapshots", "namespace", "snapshotter", "key")}
    out |= {("lease", n, i) for n, i in rows(db, "leases", "namespace", "id")}
    out |= {("ingest", n, r) for n, r in rows(db, "ingests", "namespace", "ref")}
    return out


async def collect(metadata):
    report = await Collector(metadata).collect()
    return {(r.kind, r.namespace, r.id) for r in report.removed}


async def test_unreferenced_content_goes_and_nothing_else(db, metadata):
    add_content(db, NS, A)
    assert await collect(metadata) == {("content", NS, A)}
    assert remaining(db) == set()


async def test_lease_keeps_its_resources_and_their_references(db, metadata):
    add_lease(db, NS, "L")
    add_content(db, NS, A, {"containerd.io/gc.ref.content.m.0": B, "containerd.io/gc.ref.snapshot.native": "s2"})
    add_content(db, NS, B, {"containerd.io/gc.ref.content.l.0": C})
    add_content(db, NS, C)
    add_content(db, NS, D)
    add_snapshot(db, NS, "native", "s1")
    add_snapshot(db, NS, "native", "s2", parent="s1")
    add_snapshot(db, NS, "native", "s3")
    add_ingest(db, NS, "r1")
    add_image(db, NS, "leased-image", D, labels={"containerd.io/gc.expire": PAST})
    for rtype, rid in (("content", A), ("ingests", "r1"), ("images", "leased-image")):
        add_resource(db, NS, "L", rtype, rid)
    assert await collect(metadata) == {("snapshot", NS, "native/s3")}


async def test_flat_lease_keeps_only_what_it_names_plus_parents_and_targets(db, metadata):
    add_lease(db, NS, "flat", {"containerd.io/gc.flat": ""})
    add_content(db, NS, A, {"containerd.io/gc.ref.content": B})
    add_content(db, NS, B)
    add_content(db, NS, C, {"containerd.io/gc.ref.content": D})  # image target, flat: its labels are not followed
    add_content(db, NS, D)
    add_image(db, NS, "img", C, labels={"containerd.io/gc.expire": PAST, "containerd.io/gc.ref.content": B})
    add_snapshot(db, NS, "native", "parent")
    add_snapshot(db, NS, "native", "child", parent="parent", labels={"containerd.io/gc.ref.content": B})
    for rtype, rid in (("content", A), ("images", "img"), ("snapshots/native", "child")):
        add_resource(db, NS, "flat", rtype, rid)
    assert await collect(metadata) == {("content", NS, B), ("content", NS, D)}


async def test_expired_lease_and_its_resources_go(db, metadata):
    add_lease(db, NS, "old", {"containerd.io/gc.expire": PAST})
    add_lease(db, NS, "new", {"containerd.io/gc.expire": FUTURE})
    add_lease(db, NS, "bad", {"containerd.io/gc.expire": "not a time"})  # malformed: no expiry
    add_content(db, NS, A)
    add_content(db, NS, B)
    add_content(db, NS, C)
    add_resource(db, NS, "old", "content", A)
    add_resource(db, NS, "new", "content", B)
    add_resource(db, NS, "bad", "content", C)
    assert await collect(metadata) == {("lease", NS, "old"), ("content", NS, A)}
    assert ("old", "content", A) not in {(l, t, i) for _, l, t, i in
                                         rows(db, "lease_resources", "namespace", "lease", "type", "id")}


async def test_images_are_roots_unless_expired(db, metadata):
    add_content(db, NS, A, {"containerd.io/gc.ref.content.config": B})
    add_content(db, NS, B)
    add_content(db, NS, C)
    add_image(db, NS, "live", A)
    add_image(db, NS, "gone", C, labels={"containerd.io/gc.expire": PAST})
    assert await collect(metadata) == {("image", NS, "gone"), ("content", NS, C)}


async def test_gc_root_label_on_content_and_snapshots(db, metadata):
    add_content(db, NS, A, {"containerd.io/gc.root": "2024-01-01T00:00:00Z", "containerd.io/gc.ref.content": B})
    add_content(db, NS, B)
    add_snapshot(db, NS, "native", "base")
    add_snapshot(db, NS, "native", "top", parent="base", labels={"containerd.io/gc.root": "x"})
    add_content(db, NS, C)
    assert await collect(metadata) == {("content", NS, C)}


async def test_containers_and_sandboxes_are_roots_and_never_removed(db, metadata):
    add_snapshot(db, NS, "overlayfs", "rootfs-parent")
    add_snapshot(db, NS, "overlayfs", "c1-rootfs", parent="rootfs-parent")
    add_container(db, NS, "c1", "overlayfs", "c1-rootfs", labels={"containerd.io/gc.ref.content": A})
    add_content(db, NS, A)
    add_sandbox(db, NS, "sb1", labels={"containerd.io/gc.ref.content.spec": B})
    add_content(db, NS, B)
    add_container(db, NS, "lonely")
    assert await collect(metadata) == set()
    assert {i for _, i in rows(db, "containers", "namespace", "id")} == {"c1", "lonely"}
    assert {i for _, i in rows(db, "sandboxes", "namespace", "id")} == {"sb1"}


async def test_ingests_are_roots_until_they_expire_and_keep_their_expected_blob(db, metadata):
    add_content(db, NS, A)
    add_content(db, NS, B)
    add_ingest(db, NS, "live", expected=A, expire_at=now_ns() + 3600 * 10**9)
    add_ingest(db, NS, "expired", expected=B, expire_at=now_ns() - 10**9)
    add_ingest(db, NS, "no-expiry")  # only a lease would keep it
    assert await collect(metadata) == {("ingest", NS, "expired"), ("ingest", NS, "no-expiry"),
                                       ("content", NS, B)}


async def test_back_references(db, metadata):
    add_content(db, NS, A)
    add_image(db, NS, "img", A)
    add_container(db, NS, "c1")
    # kept because a live object is named by its bref label
    add_content(db, NS, B, {"containerd.io/gc.bref.image": "img"})
    add_snapshot(db, NS, "native", "s1", labels={"containerd.io/gc.bref.container.x": "c1"})
    add_content(db, NS, C, {"containerd.io/gc.bref.snapshot.native": "s1"})
    # an expired image hangs on a live content blob through its bref
    add_image(db, NS, "hanger-on", A, labels={"containerd.io/gc.expire": PAST, "containerd.io/gc.bref.content": A})
    # back-reference to something that does not exist keeps nothing
    add_content(db, NS, D, {"containerd.io/gc.bref.image": "missing"})
    assert await collect(metadata) == {("content", NS, D)}


async def test_conditional_snapshot_reference(db, metadata):
    recent = "2999-01-01T00:00:00Z"  # used "in the future": now - usedat < 1h holds
    add_content(db, NS, A, {"containerd.io/gc.root": "", "containerd.io/gc.cond.snapshot.native": "usedat<1h|s1"})
    add_snapshot(db, NS, "native", "s1", labels={"containerd.io/gc.cond.value-usedat": recent})
    add_content(db, NS, B, {"containerd.io/gc.root": "", "containerd.io/gc.cond.snapshot.native": "usedat<1h|s2"})
    add_snapshot(db, NS, "native", "s2", labels={"containerd.io/gc.cond.value-usedat": PAST})
    assert await collect(metadata) == {("snapshot", NS, "native/s2")}


async def test_namespaces_do_not_reference_each_other(db, metadata):
    add_lease(db, "one", "L")
    add_content(db, "one", A)
    add_resource(db, "one", "L", "content", A)
    add_content(db, "two", A)  # same digest, another namespace: its own record, unprotected
    assert await collect(metadata) == {("content", "two", A)}


async def test_dangling_references_are_harmless(db, metadata):
    add_lease(db, NS, "L")
    add_resource(db, NS, "L", "content", A)  # never committed
    add_resource(db, NS, "L", "bogus-type", "x")
    add_content(db, NS, B, {"containerd.io/gc.root": "", "containerd.io/gc.ref.content": C,
                            "containerd.io/gc.ref.snapshot.native": "nope"})
    assert await collect(metadata) == set()


async def test_snapshot_rows_being_created_are_kept(db, metadata):
    with db.read() as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(snapshots)")}
    if "pending" not in columns:
        pytest.skip("snapshots.pending not in this schema")
    add_snapshot(db, NS, "native", "busy")
    with db.write() as tx:
        tx.execute("UPDATE snapshots SET pending = 'create' WHERE key = 'busy'")
    assert await collect(metadata) == set()


async def test_dry_run_lists_and_removes_nothing(db, metadata):
    add_content(db, NS, A)
    add_lease(db, NS, "old", {"containerd.io/gc.expire": PAST})
    before = remaining(db)
    report = await Collector(metadata).collect(dry_run=True)
    assert report.dry_run
    assert {(r.kind, r.namespace, r.id) for r in report.removed} == {("content", NS, A), ("lease", NS, "old")}
    assert remaining(db) == before


async def test_events_for_what_was_removed(db, metadata):
    add_content(db, NS, A)
    add_image(db, NS, "img", B, labels={"containerd.io/gc.expire": PAST})
    add_snapshot(db, "other", "native", "s1")
    add_lease(db, NS, "old", {"containerd.io/gc.expire": PAST})
    await collect(metadata)
    assert sorted(metadata.events.topics()) == sorted([
        (NS, "/content/delete", {"digest": A}),
        (NS, "/images/delete", {"name": "img"}),
        ("other", "/snapshot/remove", {"key": "s1", "snapshotter": "native"}),
    ])


async def test_explain_chain_from_a_root(db, metadata):
    add_lease(db, NS, "L")
    add_content(db, NS, A, {"containerd.io/gc.ref.content.m.0": B})
    add_content(db, NS, B, {"containerd.io/gc.ref.snapshot.overlayfs": "chain"})
    add_snapshot(db, NS, "overlayfs", "base")
    add_snapshot(db, NS, "overlayfs", "chain", parent="base")
    add_resource(db, NS, "L", "content", A)
    answer = await Collector(metadata).explain(NS, "snapshot", "overlayfs/base")
    assert answer.kept
    assert [(s.kind, s.id, s.via) for s in answer.chain] == [
        ("lease", "L", "root: unexpired lease"),
        ("content", A, "held by lease"),
        ("content", B, "label containerd.io/gc.ref.content.m.0"),
        ("snapshot", "overlayfs/chain", "label containerd.io/gc.ref.snapshot.overlayfs"),
        ("snapshot", "overlayfs/base", "parent"),
    ]


async def test_explain_picks_a_shortest_chain_and_names_back_references(db, metadata):
    add_image(db, NS, "img", A)
    add_content(db, NS, A, {"containerd.io/gc.ref.content": B})
    add_content(db, NS, B, {"containerd.io/gc.ref.content": C})
    add_content(db, NS, C, {"containerd.io/gc.bref.image": "img"})
    answer = await Collector(metadata).explain(NS, "content", C)
    assert [(s.kind, s.id) for s in answer.chain] == [("image", "img"), ("content", C)]
    assert answer.chain[1].via.startswith("back-reference label containerd.io/gc.bref.image")


async def test_explain_when_nothing_keeps_it(db, metadata):
    from wire import errdefs

    add_content(db, NS, A)
    add_lease(db, NS, "old", {"containerd.io/gc.expire": PAST})
    collector = Collector(metadata)
    answer = await collector.explain(NS, "content", A)
    assert not answer.kept and answer.chain == [] and "nothing keeps it" in answer.reason
    assert "expired" in (await collector.explain(NS, "lease", "old")).reason
    with pytest.raises(errdefs.NotFound):
        await collector.explain(NS, "content", B)
    with pytest.raises(errdefs.InvalidArgument):
        await collector.explain(NS, "blob", A)
    with pytest.raises(errdefs.InvalidArgument):
        await collector.explain(NS, "snapshot", "no-snapshotter")
