"""Containers.*: validation, update masks, filters and events, against a real daemon."""

from __future__ import annotations

import itertools

import pytest

from wire import errdefs

SPEC = {"ociVersion": "1.0.2", "process": {"args": ["/bin/true"], "cwd": "/"}, "root": {"path": "rootfs"}}


def container(cid: str, **kw) -> dict:
    base = {"id": cid, "runtime": {"name": "io.dockyard.runc.v1"}, "spec": SPEC}
    base.update(kw)
    return base


def test_create_get_list_delete_round_trip(daemon):
    rec = daemon.call("Containers.Create", {"container": container(
        "web", image="docker.io/library/busybox:latest", labels={"tier": "front"},
        snapshotter="overlayfs", snapshot_key="web", extensions={"x": {"a": 1}})})
    assert rec["id"] == "web" and rec["created_at"] == rec["updated_at"] > 0
    got = daemon.call("Containers.Get", {"id": "web"})
    assert got == rec
    assert got["spec"] == SPEC and got["extensions"] == {"x": {"a": 1}}
    assert [c["id"] for c in daemon.call("Containers.List")] == ["web"]
    daemon.call("Containers.Delete", {"id": "web"})
    with pytest.raises(errdefs.NotFound, match="container 'web'"):
        daemon.call("Containers.Get", {"id": "web"})
    with pytest.raises(errdefs.NotFound):
        daemon.call("Containers.Delete", {"id": "web"})


@pytest.mark.parametrize("bad, match", [
    (container("bad id"), "container id"),
    (container("a", runtime={"name": ""}), "runtime name"),
    (container("a", spec=None), "spec"),
    (container("a", snapshot_key="k"), "snapshot key requires a snapshotter"),
    (container("a", extensions={"": {}}), "extension name"),
    (container("a", labels={"k": "v" * 5000}), "label"),
])
def test_create_validation(daemon, bad, match):
    with pytest.raises(errdefs.InvalidArgument, match=match):
        daemon.call("Containers.Create", {"container": bad})


def test_duplicate_and_namespace_required(daemon):
    daemon.call("Containers.Create", {"container": container("a")})
    with pytest.raises(errdefs.AlreadyExists):
        daemon.call("Containers.Create", {"container": container("a")})
    with daemon.client(namespace=None) as c, pytest.raises(errdefs.FailedPrecondition, match="namespace"):
        c.call("Containers.List")
    # namespaces are separate
    with daemon.client(namespace=daemon.namespace + "-other") as c:
        assert c.call("Containers.List") == []
        c.call("Containers.Create", {"container": container("a")})


def test_update_masks(daemon):
    daemon.call("Containers.Create", {"container": container(
        "u", labels={"a": "1", "b": "2"}, snapshotter="native", snapshot_key="u", image="img1")})
    rec = daemon.call("Containers.Update", {"container": container("u", labels={"a": "9", "c": "3"}),
                                            "update_mask": ["labels.a", "labels.b"]})
    assert rec["labels"] == {"a": "9"}
    assert rec["image"] == "img1" and rec["snapshot_key"] == "u"
    rec = daemon.call("Containers.Update", {"container": container("u", image="img2"), "update_mask": ["image"]})
    assert rec["image"] == "img2" and rec["labels"] == {"a": "9"}
    with pytest.raises(errdefs.InvalidArgument, match="cannot update 'runtime'"):
        daemon.call("Containers.Update", {"container": container("u"), "update_mask": ["runtime"]})
    # no mask: full replace of the mutable fields; immutable ones must not change
    with pytest.raises(errdefs.InvalidArgument, match="snapshotter field is immutable"):
        daemon.call("Containers.Update", {"container": container("u", snapshotter="overlayfs")})
    with pytest.raises(errdefs.InvalidArgument, match="runtime.name field is immutable"):
        daemon.call("Containers.Update", {"container": container(
            "u", snapshotter="native", runtime={"name": "io.other.v1"})})
    rec = daemon.call("Containers.Update", {"container": container("u", snapshotter="native", labels={"z": "1"})})
    assert rec["labels"] == {"z": "1"} and rec["image"] == "" and rec["snapshot_key"] == ""
    assert rec["updated_at"] > rec["created_at"]
    with pytest.raises(errdefs.NotFound):
        daemon.call("Containers.Update", {"container": container("missing")})


def test_list_filters(daemon):
    for i, (image, tier) in enumerate([("busybox", "a"), ("alpine", "b"), ("busybox", "b")]):
        daemon.call("Containers.Create", {"container": container(f"c{i}", image=image, labels={"tier": tier})})

    def ids(*flt):
        return [c["id"] for c in daemon.call("Containers.List", {"filters": list(flt)})]

    assert ids("image==busybox") == ["c0", "c2"]
    assert ids("labels.tier==b") == ["c1", "c2"]
    assert ids("image==busybox,labels.tier==b") == ["c2"]
    assert ids("id==c0", "id==c1") == ["c0", "c1"]
    assert ids("runtime.name==io.dockyard.runc.v1") == ["c0", "c1", "c2"]
    with daemon.client() as c:
        assert [r["id"] for r in c.stream("Containers.ListStream", {"filters": ["id~=c[12]"]})] == ["c1", "c2"]
    with pytest.raises(errdefs.InvalidArgument):
        ids("id==")


def test_events_in_order(daemon):
    with daemon.client() as sub:
        stream = sub.stream("Events.Subscribe", {"filters": ['topic~="/containers/"']})
        daemon.call("Containers.Create", {"container": container("e", image="img")})
        daemon.call("Containers.Update", {"container": container("e", labels={"k": "v"}),
                                          "update_mask": ["labels.k"]})
        daemon.call("Containers.Delete", {"id": "e"})
        got = list(itertools.islice(stream, 3))
    assert [(e["topic"], e["namespace"]) for e in got] == [
        ("/containers/create", daemon.namespace), ("/containers/update", daemon.namespace),
        ("/containers/delete", daemon.namespace)]
    assert got[0]["event"] == {"id": "e", "image": "img", "runtime": {"name": "io.dockyard.runc.v1", "options": None}}
    assert got[1]["event"] == {"id": "e", "image": "img", "labels": {"k": "v"}, "snapshot_key": ""}
    assert got[2]["event"] == {"id": "e"}


def test_record_survives_restart_and_is_plain_json(daemon):
    import json
    import sqlite3

    daemon.call("Containers.Create", {"container": container("keep", snapshotter="overlayfs", snapshot_key="keep",
                                                             image="img", sandbox_id="pod1")})
    daemon.kill9()
    daemon.start()
    assert daemon.call("Containers.Get", {"id": "keep"})["sandbox_id"] == "pod1"
    db = next(daemon.root.glob("io.dockyard.metadata.v1.*/meta.db"))
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT record FROM containers WHERE id = 'keep'").fetchone()
    conn.close()
    record = json.loads(text)
    for field in ("snapshotter", "snapshot_key", "image", "runtime", "spec", "labels", "extensions", "sandbox_id"):
        assert field in record
