"""``containerd.io/snapshot.ref`` (unpack skips layers it has, namespaces share them) and crash recovery."""

from __future__ import annotations

import pytest

from actors.metadata.db import now_ns
from actors.snapshots import Kind
from actors.snapshots import records
from wire.errdefs import AlreadyExists, NotFound
from tests.snapshots.ns_helpers import (
    BACKENDS, add_lease, backend_key_of, backend_keys, lease_resources, make_world, rows,
)
from tests.snapshots.snapshot_helpers import read_tree, write_files

REF = "containerd.io/snapshot.ref"


@pytest.fixture(params=sorted(BACKENDS))
def world(request, tmp_path):
    w = make_world(str(tmp_path), request.param)
    try:
        yield w
    finally:
        w.close()


async def unpack_layer(s, ns, chain_id, parent, tmp_path, files, lease=None):
    """What an unpacker does for one layer; True if it had to extract."""
    key = f"extract-{chain_id}"
    try:
        mounts = await s.prepare(ns, key, parent, labels={REF: chain_id}, lease=lease)
    except AlreadyExists:
        return False
    write_files(mounts, tmp_path, files)
    await s.commit(ns, chain_id, key, labels={REF: chain_id}, lease=lease)
    return True


async def test_target_in_the_namespace_skips_the_layer_and_joins_the_lease(world, tmp_path):
    s = world.store
    assert await unpack_layer(s, "a", "L1", "", tmp_path, {"f": b"1"})
    add_lease(world.db, "a", "again")
    before = rows(world.db)
    with pytest.raises(AlreadyExists, match="L1"):
        await s.prepare("a", "extract-2", labels={REF: "L1"}, lease="again")
    assert rows(world.db) == before
    assert lease_resources(world.db, "a", "again") == {(f"snapshots/{s.name}", "L1")}


async def test_a_second_namespace_links_the_committed_layers(world, tmp_path):
    s = world.store
    assert await unpack_layer(s, "a", "L1", "", tmp_path, {"f1": b"1"})
    assert await unpack_layer(s, "a", "L2", "L1", tmp_path, {"f2": b"2"})
    stored = backend_keys(world.backend)
    add_lease(world.db, "b", "pull")
    # the second namespace finds both layers already there: nothing extracted
    assert not await unpack_layer(s, "b", "L1", "", tmp_path, {"x": b"x"}, lease="pull")
    assert not await unpack_layer(s, "b", "L2", "L1", tmp_path, {"x": b"x"}, lease="pull")
    assert backend_keys(world.backend) == stored
    rtype = f"snapshots/{s.name}"
    assert lease_resources(world.db, "b", "pull") == {(rtype, "L1"), (rtype, "L2")}
    infos = {i.name: i for i in await s.list("b")}
    assert sorted(infos) == ["L1", "L2"]
    assert (infos["L2"].kind, infos["L2"].parent, infos["L2"].labels) == (Kind.COMMITTED, "L1", {REF: "L2"})
    assert backend_key_of(world.db, "b", "L2", s.name) == backend_key_of(world.db, "a", "L2", s.name)
    await s.view("b", "look", "L2")
    assert read_tree(await s.mounts("b", "look"), tmp_path) == {"f1": b"1", "f2": b"2"}
    # removing the first namespace's records leaves the second one's intact
    await s.remove("a", "L2")
    await s.remove("a", "L1")
    assert read_tree(await s.mounts("b", "look"), tmp_path) == {"f1": b"1", "f2": b"2"}


async def test_a_layer_on_another_parent_is_not_shared(world, tmp_path):
    s = world.store
    assert await unpack_layer(s, "a", "P", "", tmp_path, {"p": b"p"})
    assert await unpack_layer(s, "a", "T", "P", tmp_path, {"t": b"t"})
    assert await unpack_layer(s, "b", "Q", "", tmp_path, {"q": b"q"})
    # same ref, different parent chain: extracted again
    assert await unpack_layer(s, "b", "T", "Q", tmp_path, {"t": b"t2"})
    assert backend_key_of(world.db, "b", "T", s.name) != backend_key_of(world.db, "a", "T", s.name)


async def test_a_link_whose_backend_snapshot_vanished_extracts_again(world, tmp_path, monkeypatch):
    """A collector removed the shared layer between the backend's answer and our link."""
    s = world.store
    assert await unpack_layer(s, "a", "L1", "", tmp_path, {"f": b"1"})
    shared = backend_key_of(world.db, "a", "L1", s.name)
    real_stat = world.backend.stat
    await s.remove("a", "L1")

    def stat_after_gc(key):
        if key == shared:
            world.backend.remove(shared)  # the collector's move, just before our check
            monkeypatch.setattr(world.backend, "stat", real_stat)
        return real_stat(key)

    monkeypatch.setattr(world.backend, "stat", stat_after_gc)
    assert await unpack_layer(s, "b", "L1", "", tmp_path, {"f": b"new"})
    assert backend_key_of(world.db, "b", "L1", s.name).startswith("b/")
    await s.view("b", "v", "L1")
    assert read_tree(await s.mounts("b", "v"), tmp_path) == {"f": b"new"}


# -- crash recovery: rows a kill -9 left pending ----------------------------------------------


def _pending_row(world, ns, key, bkey, pending, parent="", kind=Kind.ACTIVE):
    with world.db.write() as tx:
        tx.ensure_namespace(ns)
        now = now_ns()
        records.insert(tx, ns, world.store.name, key=key, bkey=bkey, parent=parent, kind=kind,
                       pending=pending, labels={}, created_at=now, updated_at=now)


async def test_recover_undoes_an_interrupted_prepare(world):
    s = world.store
    _pending_row(world, "a", "before-backend", "a/1/before-backend", records.PENDING_CREATE)
    _pending_row(world, "a", "after-backend", "a/2/after-backend", records.PENDING_CREATE)
    world.backend.prepare("a/2/after-backend")
    assert await s.recover() == 2
    assert rows(world.db) == []
    assert backend_keys(world.backend) == []
    await s.prepare("a", "before-backend")  # the key is free again


async def test_recover_completes_a_commit_the_backend_finished(world):
    s = world.store
    add_lease(world.db, "a", "L")
    await s.prepare("a", "act", lease="L")
    active = backend_key_of(world.db, "a", "act", s.name)
    _pending_row(world, "a", "done", "a/9/done", records.PENDING_COMMIT + "act", kind=Kind.COMMITTED)
    with world.db.write() as tx:
        tx.execute("INSERT INTO lease_resources (namespace, lease, type, id) VALUES ('a', 'L', ?, 'done')",
                   (f"snapshots/{s.name}",))
    world.backend.commit("a/9/done", active)
    assert await s.recover() == 1
    assert [(i.name, i.kind) for i in await s.list("a")] == [("done", Kind.COMMITTED)]
    assert lease_resources(world.db, "a", "L") == {(f"snapshots/{s.name}", "done")}


async def test_recover_drops_a_commit_the_backend_never_made(world):
    s = world.store
    await s.prepare("a", "act")
    _pending_row(world, "a", "never", "a/9/never", records.PENDING_COMMIT + "act", kind=Kind.COMMITTED)
    assert await s.recover() == 1
    assert [(i.name, i.kind) for i in await s.list("a")] == [("act", Kind.ACTIVE)]
    await s.commit("a", "never", "act")


async def test_stat_of_a_pending_key_is_not_found_before_recovery(world):
    _pending_row(world, "a", "p", "a/1/p", records.PENDING_CREATE)
    with pytest.raises(NotFound):
        await world.store.stat("a", "p")
    with pytest.raises(AlreadyExists):
        await world.store.prepare("a", "p")
