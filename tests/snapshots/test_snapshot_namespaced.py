"""NamespacedSnapshotter: the state machine, namespaces, labels, leases, events, filters."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from actors.snapshots import Kind
from actors.snapshots.records import SnapshotInfo
from wire.errdefs import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from tests.snapshots.ns_helpers import (
    BACKENDS, add_lease, backend_key_of, backend_keys, lease_resources, make_world, rows,
)
from tests.snapshots.snapshot_helpers import read_tree, write_files

NS = "default"


@pytest.fixture(params=sorted(BACKENDS))
def world(request, tmp_path):
    w = make_world(str(tmp_path), request.param)
    try:
        yield w
    finally:
        w.close()


async def setup_world(s):
    """committed base ← committed mid ← active act; view vw on base."""
    await s.prepare(NS, "base-a")
    await s.commit(NS, "base", "base-a", labels={"l": "base"})
    await s.prepare(NS, "mid-a", "base")
    await s.commit(NS, "mid", "mid-a")
    await s.prepare(NS, "act", "mid", labels={"x": "1"})
    await s.view(NS, "vw", "base")


ILLEGAL = [
    ("prepare over active", lambda s: s.prepare(NS, "act"), AlreadyExists, "act"),
    ("prepare over committed", lambda s: s.prepare(NS, "base"), AlreadyExists, "base"),
    ("view over view", lambda s: s.view(NS, "vw", "base"), AlreadyExists, "vw"),
    ("prepare missing parent", lambda s: s.prepare(NS, "n", "nope"), NotFound, "nope"),
    ("prepare on active parent", lambda s: s.prepare(NS, "n", "act"), InvalidArgument, "act"),
    ("view on view parent", lambda s: s.view(NS, "n", "vw"), InvalidArgument, "vw"),
    ("prepare empty key", lambda s: s.prepare(NS, ""), InvalidArgument, "snapshot key"),
    ("prepare control char", lambda s: s.prepare(NS, "a\x00b"), InvalidArgument, "control"),
    ("prepare bad label", lambda s: s.prepare(NS, "n", labels={"k": 1}), InvalidArgument, "'k'"),
    ("commit committed", lambda s: s.commit(NS, "n", "base"), FailedPrecondition, "base"),
    ("commit view", lambda s: s.commit(NS, "n", "vw"), FailedPrecondition, "vw"),
    ("commit missing", lambda s: s.commit(NS, "n", "nope"), NotFound, "nope"),
    ("commit onto existing name", lambda s: s.commit(NS, "mid", "act"), AlreadyExists, "mid"),
    ("commit onto itself", lambda s: s.commit(NS, "act", "act"), AlreadyExists, "act"),
    ("mounts of committed", lambda s: s.mounts(NS, "base"), FailedPrecondition, "base"),
    ("mounts of missing", lambda s: s.mounts(NS, "nope"), NotFound, "nope"),
    ("remove parent of committed", lambda s: s.remove(NS, "base"), FailedPrecondition, "base"),
    ("remove parent of active", lambda s: s.remove(NS, "mid"), FailedPrecondition, "mid"),
    ("remove missing", lambda s: s.remove(NS, "nope"), NotFound, "nope"),
    ("stat missing", lambda s: s.stat(NS, "nope"), NotFound, "nope"),
    ("usage missing", lambda s: s.usage(NS, "nope"), NotFound, "nope"),
    ("update missing", lambda s: s.update(NS, SnapshotInfo(name="nope")), NotFound, "nope"),
    ("update kind field", lambda s: s.update(NS, SnapshotInfo(name="act"), ["kind"]), InvalidArgument, "kind"),
    ("key from another namespace", lambda s: s.stat("other", "base"), NotFound, "base"),
]


@pytest.mark.parametrize("call,error,named", [c[1:] for c in ILLEGAL], ids=[c[0] for c in ILLEGAL])
async def test_illegal_transition_raises_typed_error_and_changes_nothing(world, call, error, named):
    await setup_world(world.store)
    before_rows, before_backend, before_events = rows(world.db), backend_keys(world.backend), list(world.events.events)
    with pytest.raises(error) as exc:
        await call(world.store)
    assert named in exc.value.message
    assert rows(world.db) == before_rows
    assert backend_keys(world.backend) == before_backend
    assert world.events.events == before_events


async def test_lifecycle_kinds_parents_and_times(world):
    s = world.store
    await setup_world(s)
    infos = {i.name: i for i in await s.list(NS)}
    assert sorted(infos) == ["act", "base", "mid", "vw"]
    assert (infos["base"].kind, infos["base"].parent, infos["base"].labels) == (Kind.COMMITTED, "", {"l": "base"})
    assert (infos["mid"].kind, infos["mid"].parent, infos["mid"].labels) == (Kind.COMMITTED, "base", {})
    assert (infos["act"].kind, infos["act"].parent) == (Kind.ACTIVE, "mid")
    assert (infos["vw"].kind, infos["vw"].parent) == (Kind.VIEW, "base")
    assert infos["base"].created_at <= infos["mid"].created_at <= infos["act"].created_at
    # the active key is gone once committed
    for gone in ("base-a", "mid-a"):
        with pytest.raises(NotFound):
            await s.stat(NS, gone)
    # leaves go first, then their parents
    await s.remove(NS, "act")
    await s.remove(NS, "mid")
    await s.remove(NS, "vw")
    await s.remove(NS, "base")
    assert await s.list(NS) == []


async def test_data_through_a_chain_of_mounts(world, tmp_path):
    s = world.store
    mounts = await s.prepare(NS, "l0-a")
    write_files(mounts, tmp_path, {"a": b"1", "keep": b"k"})
    await s.commit(NS, "l0", "l0-a")
    mounts = await s.prepare(NS, "l1-a", "l0")
    write_files(mounts, tmp_path, {"a": b"2", "b": b"3"}, delete=["keep"])
    await s.commit(NS, "l1", "l1-a")
    view = await s.view(NS, "look", "l1")
    assert read_tree(view, tmp_path) == {"a": b"2", "b": b"3"}
    usage = await s.usage(NS, "l1")
    assert usage.inodes >= 2


async def test_same_key_in_two_namespaces_is_two_snapshots(world, tmp_path):
    s = world.store
    for ns, data in (("ns-a", b"A"), ("ns-b", b"B")):
        mounts = await s.prepare(ns, "k")
        write_files(mounts, tmp_path, {"who": data})
        await s.commit(ns, "layer", "k")
    a, b = backend_key_of(world.db, "ns-a", "layer", s.name), backend_key_of(world.db, "ns-b", "layer", s.name)
    assert a.startswith("ns-a/") and a.endswith("/layer")
    assert b.startswith("ns-b/") and b.endswith("/layer")
    await s.view("ns-a", "v", "layer")
    await s.view("ns-b", "v", "layer")
    assert read_tree(await s.mounts("ns-a", "v"), tmp_path) == {"who": b"A"}
    assert read_tree(await s.mounts("ns-b", "v"), tmp_path) == {"who": b"B"}
    await s.remove("ns-a", "v")
    await s.remove("ns-a", "layer")
    assert [i.name for i in await s.list("ns-a")] == []
    assert sorted(i.name for i in await s.list("ns-b")) == ["layer", "v"]


async def test_only_inherited_labels_reach_the_backend(world):
    s = world.store
    labels = {"containerd.io/snapshot/foo": "1", "containerd.io/snapshot.ref": "t", "mine": "x"}
    await s.prepare(NS, "k", labels=labels)
    bkey = backend_key_of(world.db, NS, "k", s.name)
    assert world.backend.stat(bkey).labels == {"containerd.io/snapshot/foo": "1", "containerd.io/snapshot.ref": "t"}
    assert (await s.stat(NS, "k")).labels == labels
    info = await s.update(NS, SnapshotInfo(name="k", labels={"containerd.io/snapshot/foo": "2", "new": "n"}),
                          ["labels.containerd.io/snapshot/foo", "labels.new", "labels.mine"])
    assert info.labels == {"containerd.io/snapshot/foo": "2", "containerd.io/snapshot.ref": "t", "new": "n"}
    assert world.backend.stat(bkey).labels == {"containerd.io/snapshot/foo": "2", "containerd.io/snapshot.ref": "t"}
    assert (await s.stat(NS, "k")).labels == info.labels
    assert info.updated_at > info.created_at
    # no field paths: replace every label
    info = await s.update(NS, SnapshotInfo(name="k", labels={"only": "this"}))
    assert info.labels == {"only": "this"}
    assert world.backend.stat(bkey).labels == {}


async def test_filters(world):
    s = world.store
    await setup_world(s)

    async def names(*flt):
        return sorted(i.name for i in await s.list(NS, list(flt)))

    assert await names("kind==committed") == ["base", "mid"]
    assert await names("kind==view", "kind==active") == ["act", "vw"]
    assert await names("parent==base") == ["mid", "vw"]
    assert await names("labels.l==base") == ["base"]
    assert await names("labels.x") == ["act"]
    assert await names("name~=^m") == ["mid"]
    with pytest.raises(InvalidArgument):
        await s.list(NS, ["kind=="])


async def test_events(world):
    s = world.store
    await s.prepare(NS, "a")
    await s.commit(NS, "c", "a")
    await s.view(NS, "v", "c")
    await s.prepare(NS, "b", "c")
    await s.remove(NS, "v")
    name = s.name
    assert world.events.events == [
        (NS, "/snapshot/prepare", {"key": "a", "parent": "", "snapshotter": name}),
        (NS, "/snapshot/commit", {"key": "a", "name": "c", "snapshotter": name}),
        (NS, "/snapshot/prepare", {"key": "b", "parent": "c", "snapshotter": name}),
        (NS, "/snapshot/remove", {"key": "v", "snapshotter": name}),
    ]


async def test_created_and_committed_keys_join_the_lease(world):
    s = world.store
    add_lease(world.db, NS, "L")
    rtype = f"snapshots/{s.name}"
    await s.prepare(NS, "a", lease="L")
    assert lease_resources(world.db, NS, "L") == {(rtype, "a")}
    await s.commit(NS, "c", "a", lease="L")
    assert lease_resources(world.db, NS, "L") == {(rtype, "c")}
    await s.view(NS, "v", "c", lease="L")
    assert lease_resources(world.db, NS, "L") == {(rtype, "c"), (rtype, "v")}
    await s.remove(NS, "v")
    assert lease_resources(world.db, NS, "L") == {(rtype, "c")}


async def test_unknown_lease_creates_nothing(world):
    with pytest.raises(NotFound, match="lease"):
        await world.store.prepare(NS, "a", lease="nope")
    assert rows(world.db) == []
    assert backend_keys(world.backend) == []


async def test_remove_marks_the_database_dirty_and_leaves_the_backend_to_gc(world):
    s = world.store
    await s.prepare(NS, "a")
    bkey = backend_key_of(world.db, NS, "a", s.name)
    world.deletions.clear()
    await s.remove(NS, "a")
    assert world.deletions == [True]
    assert bkey in backend_keys(world.backend)  # GC's job, not Remove's


async def test_a_failing_backend_leaves_no_reservation(world, monkeypatch):
    s = world.store

    def broken(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(world.backend, "prepare", broken)
    with pytest.raises(OSError):
        await s.prepare(NS, "a")
    assert rows(world.db) == []
    monkeypatch.undo()
    await s.prepare(NS, "a")
    assert [i.name for i in await s.list(NS)] == ["a"]


async def test_pending_rows_are_invisible_but_reserve_their_key(world):
    s = world.store
    await s.prepare(NS, "p-a")
    await s.commit(NS, "p", "p-a")
    entered, release = trio.Event(), trio.Event()
    real = world.backend.prepare

    def slow(*args):
        trio.from_thread.run_sync(entered.set)
        trio.from_thread.run(release.wait)
        return real(*args)

    world.backend.prepare = slow
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.prepare, NS, "k", "p")
            await entered.wait()
            with pytest.raises(NotFound):
                await s.stat(NS, "k")
            assert [i.name for i in await s.list(NS)] == ["p"]
            with pytest.raises(FailedPrecondition):  # the pending child holds its parent
                await s.remove(NS, "p")
            release.set()
    finally:
        world.backend.prepare = real
    assert (await s.stat(NS, "k")).kind == Kind.ACTIVE


async def test_operations_on_one_key_run_in_order(world):
    s = world.store
    await s.prepare(NS, "a")
    results = {}

    async def commit():
        await s.commit(NS, "c", "a")
        results["commit"] = "ok"

    async def remove():
        try:
            await s.remove(NS, "a")
            results["remove"] = "ok"
        except NotFound:
            results["remove"] = "not found"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(commit)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(remove)
    assert results == {"commit": "ok", "remove": "not found"}
    assert [(i.name, i.kind) for i in await s.list(NS)] == [("c", Kind.COMMITTED)]


async def test_concurrent_prepares_of_one_key_one_wins(world):
    s = world.store
    outcomes = []

    async def one():
        try:
            await s.prepare(NS, "same")
            outcomes.append("ok")
        except AlreadyExists:
            outcomes.append("exists")

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(one)
    assert sorted(outcomes) == ["exists", "exists", "exists", "ok"]
    assert len(backend_keys(world.backend)) == 1


async def test_cleanup_reclaims_orphaned_storage(world):
    s = world.store
    await s.prepare(NS, "a")
    bkey = backend_key_of(world.db, NS, "a", s.name)
    world.backend.remove(bkey)
    os.makedirs(os.path.join(world.backend.snapshots_dir, "999"))
    await s.cleanup()
    assert "999" not in os.listdir(world.backend.snapshots_dir)


async def _blocked_prepare(world, key, entered, release):
    real = world.backend.prepare

    def slow(*args):
        trio.from_thread.run_sync(entered.set)
        trio.from_thread.run(release.wait)
        return real(*args)

    world.backend.prepare = slow
    try:
        await world.store.prepare(NS, key)
    finally:
        world.backend.prepare = real


async def test_a_cancelled_waiter_reserves_nothing(world):
    entered, release = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_blocked_prepare, world, "k", entered, release)
        await entered.wait()
        with trio.move_on_after(0.05) as scope:
            await world.store.commit(NS, "c", "k")  # waits for the key held by the prepare
        assert scope.cancelled_caught
        release.set()
    assert [(r[2], r[6]) for r in rows(world.db)] == [("k", "")]
    assert world.store.statistics()["locks"] == {"keys": 0, "users": 0}


async def test_a_key_held_too_long_is_unavailable(tmp_path):
    from wire.errdefs import Unavailable

    w = make_world(str(tmp_path), "overlayfs", lock_timeout=0.05)
    try:
        entered, release = trio.Event(), trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_blocked_prepare, w, "k", entered, release)
            await entered.wait()
            with pytest.raises(Unavailable, match="'k': busy"):
                await w.store.remove(NS, "k")
            release.set()
        await w.store.remove(NS, "k")
    finally:
        w.close()
