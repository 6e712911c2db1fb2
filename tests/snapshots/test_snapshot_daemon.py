"""Snapshots through a real daemon: the RPC, the CLI, both plugins, and kill -9 mid-prepare."""

from __future__ import annotations

import glob
import json
import os
import re
import threading
import time

import pytest

from actors.mount import Mount, mounts_under
from tests.snapshots.snapshot_helpers import read_tree, write_files
from tests.support.daemon import Daemon
from wire import errdefs

LEASE = "test-lease"


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("snapshots-daemon")).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def daemon(shared_daemon, request):
    """The shared daemon, switched to a namespace of this test's own (keys never collide)."""
    shared_daemon.namespace = "t-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    return shared_daemon


def to_mounts(reply: dict) -> list[Mount]:
    return [Mount(type=m["type"], source=m["source"], target=m["target"], options=tuple(m["options"]))
            for m in reply["mounts"]]


# Five layers: adds, replacements, deletions and a directory emptied and refilled.
LAYERS = [
    ({"etc/a": b"a0", "etc/b": b"b0", "bin/sh": b"sh", "var/log/x": b"x"}, []),
    ({"etc/a": b"a1", "etc/c": b"c1"}, ["etc/b"]),
    ({"usr/lib/libc": b"libc"}, ["var/log/x"]),
    ({"etc/b": b"b3"}, ["bin/sh"]),
    ({"var/log/y": b"y4", "etc/a": b"a4"}, ["etc/c"]),
]
EXPECTED = {"etc/a": b"a4", "etc/b": b"b3", "usr/lib/libc": b"libc", "var/log/y": b"y4"}


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_five_layer_chain_through_the_rpc(daemon, tmp_path, snapshotter):
    with daemon.client(lease=LEASE) as c:
        c.call("Leases.Create", {"id": LEASE})
        parent = ""
        for i, (files, deleted) in enumerate(LAYERS):
            mounts = to_mounts(c.call("Snapshots.Prepare", {"snapshotter": snapshotter, "key": f"active-{i}",
                                                            "parent": parent}))
            write_files(mounts, tmp_path, files, delete=deleted)
            c.call("Snapshots.Commit", {"snapshotter": snapshotter, "name": f"layer-{i}", "key": f"active-{i}"})
            parent = f"layer-{i}"
        view = to_mounts(c.call("Snapshots.View", {"snapshotter": snapshotter, "key": "top", "parent": parent}))
        assert read_tree(view, tmp_path) == EXPECTED
        infos = list(c.stream("Snapshots.List", {"snapshotter": snapshotter, "filters": ["kind==committed"]}))
        assert [(i["name"], i["parent"]) for i in infos] == [
            ("layer-0", ""), ("layer-1", "layer-0"), ("layer-2", "layer-1"), ("layer-3", "layer-2"),
            ("layer-4", "layer-3")]
        usage = c.call("Snapshots.Usage", {"snapshotter": snapshotter, "key": "layer-0"})
        assert usage["inodes"] >= 4 and usage["size"] > 0
        with pytest.raises(errdefs.FailedPrecondition):
            c.call("Snapshots.Remove", {"snapshotter": snapshotter, "key": "layer-3"})
        with pytest.raises(errdefs.FailedPrecondition):
            c.call("Snapshots.Mounts", {"snapshotter": snapshotter, "key": "layer-4"})
        with pytest.raises(errdefs.InvalidArgument, match="nope"):
            c.call("Snapshots.Stat", {"snapshotter": "nope", "key": "layer-4"})
    assert not mounts_under(str(tmp_path))


def test_cli_shapes(daemon):
    with daemon.client(namespace="") as c:
        with pytest.raises(errdefs.FailedPrecondition, match="namespace"):
            c.call("Snapshots.Prepare", {"key": "k"})
    cli = lambda *a: daemon.cli("snapshots", *a).stdout.decode()  # noqa: E731
    assert cli("prepare", "a1") == ""
    cli("commit", "c1", "a1")
    printed = cli("prepare", "--target", "/mnt/x", "a2", "c1")
    assert re.fullmatch(r"mount -t overlay overlay /mnt/x -o \S*upperdir=\S+lowerdir=\S+\n", printed)
    as_json = json.loads(cli("view", "--mounts", "v1", "c1"))
    assert as_json[0]["Type"] == "bind" and as_json[0]["Options"] == ["ro", "rbind"]
    assert cli("ls").splitlines() == [
        "KEY PARENT KIND",
        "a2  c1     Active",
        "c1         Committed",
        "v1  c1     View",
    ]
    assert cli("tree").splitlines() == [" c1", "  \\_ a2", "  \\_ v1"]
    info = json.loads(cli("info", "a2"))
    assert (info["Kind"], info["Name"], info["Parent"]) == ("Active", "a2", "c1")
    assert "containerd.io/gc.root" in info["Labels"]  # as ctr: what the CLI makes is kept until removed
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", info["Created"])
    usage = cli("usage", "-b", "c1").splitlines()
    assert usage[0] == "KEY SIZE INODES" and re.fullmatch(r"c1  \d+ +\d+", usage[1])
    assert re.fullmatch(r"c1  \d+\.\d (B|KiB|MiB) +\d+", cli("usage", "c1").splitlines()[1])
    assert cli("mounts", "/t", "v1").startswith("mount -t bind ")
    assert "foo=bar" in cli("label", "c1", "foo=bar")
    assert "foo=" not in cli("label", "c1", "foo=")
    failed = daemon.cli("snapshots", "rm", "c1", check=False)
    assert failed.returncode == 1 and b"failed to remove 'c1'" in failed.stderr
    cli("rm", "a2", "v1", "c1")
    assert cli("ls").splitlines() == ["KEY PARENT KIND"]
    assert daemon.cli("snapshots", "--snapshotter", "native", "ls").stdout.decode().splitlines() == [
        "KEY PARENT KIND"]


def test_cli_diff_writes_the_layer_to_stdout(daemon, tmp_path):
    import gzip
    import io
    import tarfile

    daemon.cli("snapshots", "prepare", "a1")
    source = daemon.call("Snapshots.Mounts", {"key": "a1"})["mounts"][0]["source"]
    with open(os.path.join(source, "hello"), "wb") as fh:
        fh.write(b"hi")
    blob = daemon.cli("snapshots", "diff", "--keep", "a1").stdout
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        assert tar.getnames() == ["hello"]
        assert tar.extractfile("hello").read() == b"hi"


def test_kill_9_during_prepare_leaves_nothing_visible(make_daemon):
    """A slow native prepare (a copy of 600 files) killed half-way; the restarted daemon shows nothing of it."""
    daemon = make_daemon()
    daemon.start()
    sn = {"snapshotter": "native"}
    daemon.call("Snapshots.Prepare", {**sn, "key": "base-a", "labels": {"containerd.io/gc.root": "x"}})
    source = daemon.call("Snapshots.Mounts", {**sn, "key": "base-a"})["mounts"][0]["source"]
    for d in range(10):
        os.makedirs(os.path.join(source, f"d{d}"))
        for f in range(60):
            with open(os.path.join(source, f"d{d}", f"f{f}"), "wb") as fh:
                fh.write(b"x" * 64)
    daemon.call("Snapshots.Commit", {**sn, "name": "base", "key": "base-a", "labels": {"containerd.io/gc.root": "x"}})
    snapshots_dir = os.path.join(str(daemon.root), "io.dockyard.snapshotter.v1.native", "snapshots")

    caught = None
    for attempt in range(5):
        key = f"victim-{attempt}"
        done = threading.Event()

        def prepare(key=key):
            try:
                daemon.call("Snapshots.Prepare", {**sn, "key": key, "parent": "base"})
            except Exception:
                pass
            finally:
                done.set()

        thread = threading.Thread(target=prepare)
        thread.start()
        deadline = time.monotonic() + 20
        while not done.is_set() and time.monotonic() < deadline:
            if glob.glob(os.path.join(snapshots_dir, "new-*")):
                daemon.kill9()
                caught = key
                break
            time.sleep(0.001)
        thread.join(20)
        if caught:
            break
    assert caught, "no prepare was ever caught in flight"

    daemon.start()
    with pytest.raises(errdefs.NotFound):
        daemon.call("Snapshots.Stat", {**sn, "key": caught})
    with daemon.client() as c:
        assert [i["name"] for i in c.stream("Snapshots.List", sn)] == ["base"]
    daemon.call("Snapshots.Cleanup", sn)
    live = sorted(os.listdir(snapshots_dir))
    assert not [e for e in live if e.startswith(("new-", "rm-"))], live
    # the key is free again and the copy works
    daemon.call("Snapshots.Prepare", {**sn, "key": caught, "parent": "base", "labels": {"containerd.io/gc.root": "x"}})
    again = daemon.call("Snapshots.Mounts", {**sn, "key": caught})["mounts"][0]["source"]
    assert len(os.listdir(os.path.join(again, "d9"))) == 60
    daemon.stop()


def test_plugin_config_root_path(make_daemon, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    daemon = make_daemon(config={"plugins": {
        "io.dockyard.snapshotter.v1.overlayfs": {"root_path": str(elsewhere), "mount_options": ["nodev"]}}})
    daemon.start()
    try:
        daemon.call("Snapshots.Prepare", {"key": "k", "labels": {"containerd.io/gc.root": "x"}})
        daemon.call("Snapshots.Commit", {"name": "c", "key": "k", "labels": {"containerd.io/gc.root": "x"}})
        mounts = daemon.call("Snapshots.Prepare", {"key": "k2", "parent": "c"})["mounts"]
        assert "nodev" in mounts[0]["options"]
        assert all(o.startswith(("index=", "nodev")) or str(elsewhere) in o for o in mounts[0]["options"])
    finally:
        daemon.stop()


def test_events_reach_subscribers(daemon):
    mark = daemon.call("Events.Publish", {"topic": "/test/mark", "event": {}})["seq"]
    daemon.cli("snapshots", "prepare", "a")
    daemon.cli("snapshots", "commit", "c", "a")
    daemon.cli("snapshots", "view", "v", "c")
    daemon.cli("snapshots", "rm", "v")
    with daemon.client() as c:
        stream = c.stream("Events.Subscribe", {"filters": ['topic~="^/snapshot/"'], "since": mark}, timeout=20)
        got = [(e["namespace"], e["topic"], e["event"]) for e in (next(stream) for _ in range(3))]
        stream.close()
    assert got == [
        (daemon.namespace, "/snapshot/prepare", {"key": "a", "parent": "", "snapshotter": "overlayfs"}),
        (daemon.namespace, "/snapshot/commit", {"key": "a", "name": "c", "snapshotter": "overlayfs"}),
        (daemon.namespace, "/snapshot/remove", {"key": "v", "snapshotter": "overlayfs"}),
    ]


def test_gc_removes_unreferenced_storage_and_keeps_a_parent_in_use(daemon):
    root_label = {"containerd.io/gc.root": "x"}
    daemon.call("Snapshots.Prepare", {"key": "base-a", "labels": root_label})
    base_fs = daemon.call("Snapshots.Mounts", {"key": "base-a"})["mounts"][0]["source"]
    daemon.call("Snapshots.Commit", {"name": "base", "key": "base-a"})  # no root: kept only as a parent
    daemon.call("Snapshots.Prepare", {"key": "child", "parent": "base", "labels": root_label})
    daemon.call("Snapshots.Prepare", {"key": "loose-a", "labels": root_label})
    loose_fs = daemon.call("Snapshots.Mounts", {"key": "loose-a"})["mounts"][0]["source"]
    daemon.call("Snapshots.Commit", {"name": "loose", "key": "loose-a"})  # nothing holds it

    daemon.call("GC.Collect", {})
    with pytest.raises(errdefs.NotFound):
        daemon.call("Snapshots.Stat", {"key": "loose"})
    assert not os.path.exists(os.path.dirname(loose_fs))
    assert daemon.call("Snapshots.Stat", {"key": "base"})["info"]["kind"] == "committed"
    assert os.path.isdir(base_fs)
    # once the child goes, so does its parent
    daemon.call("Snapshots.Remove", {"key": "child"})
    daemon.call("GC.Collect", {})
    with pytest.raises(errdefs.NotFound):
        daemon.call("Snapshots.Stat", {"key": "base"})
    assert not os.path.exists(os.path.dirname(base_fs))
