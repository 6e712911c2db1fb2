"""Diff.Apply and Diff.Diff through a real daemon, on overlayfs and native snapshots."""

from __future__ import annotations

import os
import re

import pytest

from actors.mount import Mount, mounts_under, temp_mount
from tests.diff.diff_helpers import d, f, gz, hard, listing, sha, sym, tar_bytes, wh, zst
from tests.support.daemon import Daemon
from wire import errdefs

LEASE = "diff-test"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

LAYER1 = gz(tar_bytes([
    d("etc"), f("etc/a", b"a1"), f("etc/keep", b"k", mode=0o600, uid=1000, gid=1000),
    d("data", mode=0o750), f("data/x", b"x"), f("data/y", b"y"),
    sym("etc/link", "a"), hard("etc/hard", "etc/a"),
]))
LAYER2 = zst(tar_bytes([
    d("etc"), wh("etc/.wh.keep"), f("etc/a", b"a2"),
    d("data", mode=0o750), wh("data/.wh..wh..opq"), f("data/z", b"z"),
]))


def desc(blob: bytes, media_type: str) -> dict:
    return {"media_type": media_type, "digest": sha(blob), "size": len(blob)}


def upload(c, blob: bytes) -> None:
    c.upload("Content.Write", {"ref": f"upload-{sha(blob)}", "expected": sha(blob), "total": len(blob)}, [blob])


def as_mounts(reply: dict) -> list[Mount]:
    return [Mount(type=m["type"], source=m["source"], target=m["target"], options=tuple(m["options"]))
            for m in reply["mounts"]]


def tree(mounts: list[Mount], tmp_path) -> dict:
    with temp_mount(mounts, parent_dir=str(tmp_path)) as root:
        return listing(root)


def build(c, sn: str, layers: list[tuple[bytes, str]]) -> tuple[str, list[dict]]:
    """Apply ``layers`` as a chain of committed snapshots; (top name, DiffIDs as applied)."""
    parent, applied = "", []
    for i, (blob, media_type) in enumerate(layers):
        mounts = c.call("Snapshots.Prepare", {"snapshotter": sn, "key": f"{sn}-a{i}", "parent": parent})["mounts"]
        applied.append(c.call("Diff.Apply", {"diff": desc(blob, media_type), "mounts": mounts})["applied"])
        c.call("Snapshots.Commit", {"snapshotter": sn, "name": f"{sn}-l{i}", "key": f"{sn}-a{i}"})
        parent = f"{sn}-l{i}"
    return parent, applied


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("diff-daemon")).start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def client(shared_daemon, request):
    """A client in a namespace of its own: tests share one daemon, never a snapshot key."""
    ns = "t-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60].strip("-")
    with shared_daemon.client(namespace=ns, lease=LEASE) as c:
        c.call("Leases.Create", {"id": LEASE})
        upload(c, LAYER1)
        upload(c, LAYER2)
        yield c


def test_apply_gives_the_same_tree_on_overlayfs_and_native(client, tmp_path):
    trees = {}
    for sn in ("overlayfs", "native"):
        top, applied = build(client, sn, [(LAYER1, GZIP), (LAYER2, ZSTD)])
        assert [a["media_type"] for a in applied] == ["application/vnd.oci.image.layer.v1.tar"] * 2
        view = client.call("Snapshots.View", {"snapshotter": sn, "key": f"{sn}-top", "parent": top})
        trees[sn] = tree(as_mounts(view), tmp_path)
    assert trees["overlayfs"] == trees["native"]
    t = trees["native"]
    assert "etc/keep" not in t
    assert sorted(p for p in t if p.startswith("data/")) == ["data/z"]
    # etc/a was replaced: the old hard link keeps the old content
    assert (t["etc/a"][5], t["etc/hard"][5]) == (sha(b"a2")[7:23], sha(b"a1")[7:23])
    assert t["etc/link"][6] == "a"
    assert t["data"][1] == "0o750"
    assert not mounts_under(str(tmp_path))


def test_apply_reports_the_diff_id(client):
    mounts = client.call("Snapshots.Prepare", {"key": "a"})["mounts"]
    applied = client.call("Diff.Apply", {"diff": desc(LAYER1, GZIP), "mounts": mounts})["applied"]
    import gzip

    raw = gzip.decompress(LAYER1)
    assert (applied["digest"], applied["size"]) == (sha(raw), len(raw))


@pytest.mark.parametrize("active", [True, False], ids=["overlay-upper", "mounted-views"])
def test_diff_back_reapplies_to_an_identical_tree(client, tmp_path, active):
    """Diff of layer 2 (from its overlay upper, or from two mounted views) re-applied on native."""
    top, _ = build(client, "overlayfs", [(LAYER1, GZIP)])
    mounts = client.call("Snapshots.Prepare", {"key": "work", "parent": top})["mounts"]
    client.call("Diff.Apply", {"diff": desc(LAYER2, ZSTD), "mounts": mounts})
    lower = client.call("Snapshots.View", {"key": "lower", "parent": top})["mounts"]
    if active:
        upper = mounts  # one overlay mount with an upperdir: the fast path
    else:
        client.call("Snapshots.Commit", {"name": "l2", "key": "work"})
        upper = client.call("Snapshots.View", {"key": "upper", "parent": "l2"})["mounts"]
    made = client.call("Diff.Diff", {"left": lower, "right": upper, "media_type": GZIP, "ref": "my-diff",
                                     "labels": {"purpose": "test"}})["diff"]
    assert made["media_type"] == GZIP
    info = client.call("Content.Info", {"digest": made["digest"]})
    labels = info.get("info", info)["labels"]
    assert labels["purpose"] == "test"

    native_top, _ = build(client, "native", [(LAYER1, GZIP)])
    again = client.call("Snapshots.Prepare", {"snapshotter": "native", "key": "again", "parent": native_top})
    applied = client.call("Diff.Apply", {"diff": made, "mounts": again["mounts"]})["applied"]
    assert labels["containerd.io/uncompressed"] == applied["digest"]
    expected = tree(as_mounts(client.call("Snapshots.Mounts", {"key": "work"})) if active else as_mounts(
        client.call("Snapshots.View", {"key": "expect", "parent": "l2"})), tmp_path)
    assert tree(as_mounts(again), tmp_path) == expected


def test_diff_of_a_first_layer_against_nothing(client, tmp_path):
    top, _ = build(client, "native", [(LAYER1, GZIP)])
    view = client.call("Snapshots.View", {"snapshotter": "native", "key": "v", "parent": top})["mounts"]
    made = client.call("Diff.Diff", {"left": [], "right": view})["diff"]
    assert made["media_type"] == GZIP
    fresh = client.call("Snapshots.Prepare", {"key": "fresh"})
    client.call("Diff.Apply", {"diff": made, "mounts": fresh["mounts"]})
    assert tree(as_mounts(fresh), tmp_path) == tree(as_mounts({"mounts": view}), tmp_path)


def test_errors_name_what_is_wrong(client):
    mounts = client.call("Snapshots.Prepare", {"key": "a"})["mounts"]
    missing = {"media_type": GZIP, "digest": "sha256:" + "0" * 64, "size": 1}
    with pytest.raises(errdefs.NotFound, match="0000000"):
        client.call("Diff.Apply", {"diff": missing, "mounts": mounts})
    with pytest.raises(errdefs.NotImplemented_, match="nope"):
        client.call("Diff.Apply", {"diff": desc(LAYER1, "application/nope"), "mounts": mounts})
    with pytest.raises(errdefs.NotImplemented_, match="nope"):
        client.call("Diff.Diff", {"left": [], "right": mounts, "media_type": "application/nope"})
    with pytest.raises(errdefs.InvalidArgument):
        client.call("Diff.Apply", {"diff": desc(LAYER1, GZIP), "mounts": [{"type": "bind", "options": [1]}]})
    assert os.listdir(mounts[0]["source"]) == []
