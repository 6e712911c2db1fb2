"""The conformance suite: every snapshotter backend must pass all of it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from actors.mount import mount_all, mounts_under, unmount_all
from actors.snapshots import Info, Kind
from wire.errdefs import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from snapshot_helpers import build_chain, needs_root, read_tree, state, storage_entries, write_files


def setup_world(sn):
    """committed 'base' ← committed 'mid' ← active 'act'; view 'vw' on base."""
    sn.prepare("base-a")
    sn.commit("base", "base-a", labels={"l": "base"})
    sn.prepare("mid-a", "base")
    sn.commit("mid", "mid-a")
    sn.prepare("act", "mid", labels={"x": "1"})
    sn.view("vw", "base")


ILLEGAL = [
    ("prepare over active", lambda s: s.prepare("act"), AlreadyExists, "act"),
    ("prepare over committed", lambda s: s.prepare("base", ""), AlreadyExists, "base"),
    ("prepare over view", lambda s: s.prepare("vw", "base"), AlreadyExists, "vw"),
    ("view over active", lambda s: s.view("act", "base"), AlreadyExists, "act"),
    ("prepare missing parent", lambda s: s.prepare("n", "nope"), NotFound, "nope"),
    ("view missing parent", lambda s: s.view("n", "nope"), NotFound, "nope"),
    ("prepare on active parent", lambda s: s.prepare("n", "act"), InvalidArgument, "act"),
    ("prepare on view parent", lambda s: s.prepare("n", "vw"), InvalidArgument, "vw"),
    ("view on active parent", lambda s: s.view("n", "act"), InvalidArgument, "act"),
    ("prepare empty key", lambda s: s.prepare(""), InvalidArgument, "''"),
    ("prepare bad label", lambda s: s.prepare("n", labels={"k": 1}), InvalidArgument, "'n'"),
    ("commit committed", lambda s: s.commit("n", "base"), FailedPrecondition, "base"),
    ("commit view", lambda s: s.commit("n", "vw"), FailedPrecondition, "vw"),
    ("commit missing", lambda s: s.commit("n", "nope"), NotFound, "nope"),
    ("commit onto existing name", lambda s: s.commit("mid", "act"), AlreadyExists, "mid"),
    ("commit onto itself", lambda s: s.commit("act", "act"), AlreadyExists, "act"),
    ("mounts of committed", lambda s: s.mounts("base"), FailedPrecondition, "base"),
    ("mounts of missing", lambda s: s.mounts("nope"), NotFound, "nope"),
    ("remove parent of committed", lambda s: s.remove("base"), FailedPrecondition, "base"),
    ("remove parent of active", lambda s: s.remove("mid"), FailedPrecondition, "mid"),
    ("remove missing", lambda s: s.remove("nope"), NotFound, "nope"),
    ("stat missing", lambda s: s.stat("nope"), NotFound, "nope"),
    ("usage missing", lambda s: s.usage("nope"), NotFound, "nope"),
    ("update missing", lambda s: s.update(Info(name="nope", kind=Kind.ACTIVE)), NotFound, "nope"),
    ("update kind field", lambda s: s.update(Info(name="act", kind=Kind.COMMITTED), ["kind"]),
     InvalidArgument, "kind"),
]


@pytest.mark.parametrize("call,error,named", [c[1:] for c in ILLEGAL], ids=[c[0] for c in ILLEGAL])
def test_illegal_transition_raises_typed_error_and_changes_nothing(sn, call, error, named):
    setup_world(sn)
    before = state(sn)
    with pytest.raises(error) as raised:
        call(sn)
    assert named in str(raised.value)
    assert state(sn) == before


def test_prepare_commit_stat_walk_lifecycle(sn):
    sn.prepare("a", labels={"k": "v"})
    info = sn.stat("a")
    assert (info.name, info.kind, info.parent, info.labels) == ("a", Kind.ACTIVE, "", {"k": "v"})
    assert info.created == info.updated > 0
    sn.commit("c", "a", labels={"n": "m"})
    with pytest.raises(NotFound):
        sn.stat("a")
    committed = sn.stat("c")
    assert (committed.kind, committed.labels) == (Kind.COMMITTED, {"n": "m"})
    assert committed.created == info.created and committed.updated >= info.updated
    sn.view("v", "c")
    assert sn.stat("v").kind == Kind.VIEW and sn.stat("v").parent == "c"


def test_parent_chain_depth_five(sn):
    parent = ""
    for i in range(5):
        sn.prepare(f"a{i}", parent)
        sn.commit(f"c{i}", f"a{i}")
        parent = f"c{i}"
    sn.prepare("top", "c4")
    chain, key = [], "top"
    while key:
        chain.append(key)
        key = sn.stat(key).parent
    assert chain == ["top", "c4", "c3", "c2", "c1", "c0"]
    for name in ["c0", "c1", "c2", "c3"]:
        with pytest.raises(FailedPrecondition):
            sn.remove(name)
    for name in chain:  # leaves first succeeds
        sn.remove(name)
    seen = []
    sn.walk(seen.append)
    assert seen == []


@needs_root
def test_commit_freezes_usage_and_active_usage_is_live(sn, tmp_path):
    mounts = sn.prepare("a")
    empty = sn.usage("a")
    write_files(mounts, tmp_path, {"big": b"x" * 200_000, "d/small": b"y"})
    live = sn.usage("a")
    assert live.size >= empty.size + 200_000
    assert live.inodes == empty.inodes + 3  # big, d, d/small
    sn.commit("c", "a")
    assert sn.usage("c") == live
    # Changing the committed storage behind the store's back does not move it.
    sn.prepare("child", "c")
    storage = [os.path.join(sn.snapshots_dir, e) for e in storage_entries(sn)]
    for d in storage:
        for sub in ("fs", ""):
            target = os.path.join(d, sub, "extra")
            if os.path.isdir(os.path.dirname(target)):
                open(target, "wb").write(b"z" * 50_000)
                break
    assert sn.usage("c") == live


def test_remove_with_children_refused_until_children_gone(sn):
    sn.prepare("a")
    sn.commit("p", "a")
    sn.prepare("child-active", "p")
    sn.view("child-view", "p")
    with pytest.raises(FailedPrecondition, match="children"):
        sn.remove("p")
    sn.remove("child-active")
    with pytest.raises(FailedPrecondition):
        sn.remove("p")
    sn.remove("child-view")
    sn.remove("p")
    with pytest.raises(NotFound):
        sn.stat("p")


def test_view_semantics(sn):
    sn.prepare("a")
    sn.commit("p", "a")
    m1 = sn.view("v1", "p")
    m2 = sn.view("v2", "p")
    assert all("ro" in m.options for m in m1 + m2)
    assert sn.mounts("v1") == m1
    empty_view = sn.view("v0")
    assert all("ro" in m.options for m in empty_view)
    with pytest.raises(FailedPrecondition):
        sn.commit("x", "v1")
    with pytest.raises(InvalidArgument):
        sn.prepare("y", "v1")
    assert sn.usage("v1") == sn.usage("v1")  # measurable, stable


def test_walk_with_filter_and_reentrant_fn(sn):
    setup_world(sn)
    names = []
    sn.walk(lambda i: names.append((i.name, sn.stat(i.name).kind)))  # re-entrant
    assert sorted(names) == sorted([("base", Kind.COMMITTED), ("mid", Kind.COMMITTED),
                                    ("act", Kind.ACTIVE), ("vw", Kind.VIEW)])
    committed = []
    sn.walk(lambda i: committed.append(i.name), lambda i: i.kind == Kind.COMMITTED)
    assert committed == ["base", "mid"]  # oldest first
    labelled = []
    sn.walk(lambda i: labelled.append(i.name), lambda i: i.labels.get("x") == "1")
    assert labelled == ["act"]


def test_update_labels_by_fieldpath(sn):
    sn.prepare("a", labels={"keep": "1", "drop": "2"})
    created = sn.stat("a").created
    got = sn.update(Info(name="a", kind=Kind.ACTIVE, labels={"new": "3"}), ["labels.new", "labels.drop"])
    assert got.labels == {"keep": "1", "new": "3"}
    assert sn.stat("a").labels == {"keep": "1", "new": "3"}
    got = sn.update(Info(name="a", kind=Kind.ACTIVE, labels={"only": "x"}))
    assert got.labels == {"only": "x"} and got.created == created and got.updated >= created
    assert sn.update(Info(name="a", kind=Kind.ACTIVE, labels={}), ["labels"]).labels == {}


@pytest.mark.parametrize("key", ["a/b/c", "with space", "../../escape", "/abs", ".", "..", "ü/🙂"])
def test_keys_are_never_path_components(sn, key):
    sn.prepare(key)
    sn.commit(key + "@c", key)
    sn.view(key, key + "@c")
    assert sn.stat(key).parent == key + "@c"
    assert all(e.isdigit() for e in storage_entries(sn))
    assert sorted(os.listdir(sn.root)) == sorted(
        e for e in os.listdir(sn.root) if e in {"metadata.db", "metadata.db-wal", "metadata.db-shm", "lock", "snapshots"})


def test_cleanup_reclaims_orphans_and_keeps_live_storage(sn):
    setup_world(sn)
    sn.prepare("gone")
    sn.remove("gone")
    os.mkdir(os.path.join(sn.snapshots_dir, "new-orphan"))
    os.makedirs(os.path.join(sn.snapshots_dir, "999", "fs"))
    os.mkdir(os.path.join(sn.snapshots_dir, "rm-7"))
    live_before = {i: sn.usage(i) for i in ("base", "mid", "act", "vw")}
    sn.cleanup()
    ids = set(storage_entries(sn))
    assert all(e.isdigit() for e in ids) and "999" not in ids
    assert len(ids) == len(live_before) - (1 if sn.name == "native" else 0)  # native view owns no dir
    assert {i: sn.usage(i) for i in live_before} == live_before
    sn.cleanup()  # idempotent
    assert set(storage_entries(sn)) == ids


def test_reopen_keeps_state_and_root_is_exclusive(backend, root):
    first = backend(root)
    try:
        setup_world(first)
        before = state(first)
        with pytest.raises(Unavailable, match="in use"):
            backend(root)
    finally:
        first.close()
    with backend(root) as again:
        assert state(again) == before
        again.prepare("more", "mid")  # ids keep counting after reopen
        assert len(set(storage_entries(again))) == len(before[1]) + 1


def test_failed_rename_during_prepare_leaves_nothing(sn, monkeypatch):
    sn.prepare("a")
    sn.commit("p", "a")
    before = state(sn)

    def broken_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        sn.prepare("k", "p")
    monkeypatch.undo()
    assert state(sn) == before
    sn.prepare("k", "p")  # the key and id are free again


KILL_CHILD = textwrap.dedent("""
    import os, sys, time
    from actors.snapshots import {cls}
    root, marker, point = sys.argv[1:]
    real_rename = os.rename
    def stalled_rename(src, dst):
        if os.path.basename(dst).isdigit():
            if point == "after":
                real_rename(src, dst)
            open(marker, "w").close()
            time.sleep(600)
        return real_rename(src, dst)
    os.rename = stalled_rename
    sn = {cls}(root)
    sn.prepare("half", "base")
""")


@pytest.mark.parametrize("point", ["before", "after"])
def test_kill_9_during_prepare_leaves_no_half_snapshot(backend, root, tmp_path, point):
    with backend(root) as sn:
        sn.prepare("base-a")
        sn.commit("base", "base-a")
        before = state(sn)
    marker = str(tmp_path / "stalled")
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD.format(cls=backend.__name__), root, marker, point])
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(marker):
            assert child.poll() is None, "child died before reaching the rename"
            assert time.monotonic() < deadline, "child never reached the rename"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    with backend(root) as sn:
        with pytest.raises(NotFound):
            sn.stat("half")
        records, entries = state(sn)
        assert records == before[0]
        leftovers = set(entries) - set(before[1])
        assert len(leftovers) == 1
        leftover = leftovers.pop()
        assert leftover.startswith("new-") if point == "before" else leftover.isdigit()
        sn.prepare("half", "base")  # the interrupted key (and maybe its id) is usable
        sn.cleanup()
        entries = storage_entries(sn)
        assert all(e.isdigit() for e in entries)
        assert set(before[1]) < set(entries) and len(entries) == len(before[1]) + 1


@needs_root
def test_real_mounts_through_a_three_deep_chain(sn, tmp_path):
    names = build_chain(sn, tmp_path, 3)
    mounts = sn.prepare("top", names[-1])
    assert read_tree(mounts, tmp_path) == {f"f{i}": f"layer {i}".encode() for i in range(3)}
    target = tmp_path / "rootfs"
    target.mkdir()
    mount_all(mounts, str(target))
    try:
        (target / "new").mkdir()
        (target / "new" / "file").write_bytes(b"fresh")
        (target / "f2").write_bytes(b"changed")
        (target / "f0").unlink()
    finally:
        unmount_all(str(target))
    assert not mounts_under(str(target))
    sn.commit("top-c", "top")
    view = sn.view("look", "top-c")
    assert read_tree(view, tmp_path) == {"f1": b"layer 1", "f2": b"changed", "new/file": b"fresh"}
    # lower layers are untouched
    assert read_tree(sn.view("look-0", names[0]), tmp_path) == {"f0": b"layer 0"}
    # a view is read-only
    with pytest.raises(OSError):
        write_files(view, tmp_path, {"nope": b"x"})
