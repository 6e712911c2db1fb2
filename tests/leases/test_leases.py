"""Leases.* against a real dockyardd, and what leases hold across garbage collection (§12, §13)."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time

import pytest

from tests.support.daemon import Daemon
from wire import errdefs

EXPIRE = "containerd.io/gc.expire"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("leases") / "dockyard").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def call(d: Daemon, ns: str, method: str, params: dict | None = None, **meta):
    with d.client(namespace=ns) as c:
        return c.call(method, params or {}, **meta)


def ingest(d: Daemon, ns: str, data: bytes, *, lease: str | None = None, labels: dict | None = None) -> str:
    with d.client(namespace=ns) as c:
        return c.upload("Content.Write", {"ref": f"ref-{sha256(data)}", "labels": labels or {}}, [data],
                        lease=lease)["digest"]


def exists(d: Daemon, ns: str, digest: str) -> bool:
    try:
        call(d, ns, "Content.Info", {"digest": digest})
        return True
    except errdefs.NotFound:
        return False


def blob_on_disk(d: Daemon, digest: str) -> bool:
    return os.path.exists(os.path.join(d.root, "io.dockyard.content.v1.content", "blobs", "sha256",
                                       digest.split(":")[1]))


def test_create_list_delete(d):
    generated = call(d, "l1", "Leases.Create", {"labels": {"a": "1"}})["lease"]
    assert re.fullmatch(r"\d{1,9}-[A-Za-z0-9_-]{4}", generated["id"])  # containerd's <nanos>-<base64url(3)>
    assert generated["labels"] == {"a": "1"} and generated["created_at"] > 0
    named = call(d, "l1", "Leases.Create", {"id": "mine/1", "labels": {"b": "2"}})["lease"]
    assert named["id"] == "mine/1"
    with pytest.raises(errdefs.AlreadyExists, match="mine/1"):
        call(d, "l1", "Leases.Create", {"id": "mine/1"})
    with pytest.raises(errdefs.InvalidArgument):
        call(d, "l1", "Leases.Create", {"id": "x", "labels": {"k": "v" * 5000}})
    with pytest.raises(errdefs.InvalidArgument):
        call(d, "l1", "Leases.Create", {"id": "bad\x00id"})
    ids = lambda flt: sorted(le["id"] for le in call(d, "l1", "Leases.List", {"filters": flt})["leases"])  # noqa: E731
    assert ids([]) == sorted([generated["id"], "mine/1"])
    assert ids(['id=="mine/1"']) == ["mine/1"]
    assert ids(["labels.a==1"]) == [generated["id"]]
    assert call(d, "other", "Leases.List")["leases"] == []  # leases are per namespace
    call(d, "l1", "Leases.Delete", {"id": "mine/1"})
    with pytest.raises(errdefs.NotFound, match="mine/1"):
        call(d, "l1", "Leases.Delete", {"id": "mine/1"})
    assert ids([]) == [generated["id"]]


def test_resources(d):
    call(d, "l2", "Leases.Create", {"id": "R"})
    digest = "sha256:" + "a" * 64
    for resource in ({"id": digest, "type": "content"}, {"id": "ref-1", "type": "ingests"},
                     {"id": "docker.io/library/x:1", "type": "images"}, {"id": "k", "type": "snapshots/overlayfs"}):
        call(d, "l2", "Leases.AddResource", {"id": "R", "resource": resource})
    call(d, "l2", "Leases.AddResource", {"id": "R", "resource": {"id": digest, "type": "content"}})  # idempotent
    listed = call(d, "l2", "Leases.ListResources", {"id": "R"})["resources"]
    assert listed == [{"id": digest, "type": "content"}, {"id": "docker.io/library/x:1", "type": "images"},
                      {"id": "ref-1", "type": "ingests"}, {"id": "k", "type": "snapshots/overlayfs"}]
    with pytest.raises(errdefs.InvalidArgument, match="content resource"):
        call(d, "l2", "Leases.AddResource", {"id": "R", "resource": {"id": "nope", "type": "content"}})
    with pytest.raises(errdefs.InvalidArgument):
        call(d, "l2", "Leases.AddResource", {"id": "R", "resource": {"id": "k", "type": "snapshots"}})
    with pytest.raises(errdefs.InvalidArgument):
        call(d, "l2", "Leases.AddResource", {"id": "R", "resource": {"id": "k", "type": "images/x"}})
    with pytest.raises(errdefs.NotImplemented_):
        call(d, "l2", "Leases.AddResource", {"id": "R", "resource": {"id": "k", "type": "containers"}})
    with pytest.raises(errdefs.NotFound):
        call(d, "l2", "Leases.AddResource", {"id": "nope", "resource": {"id": "k", "type": "images"}})
    with pytest.raises(errdefs.NotFound):
        call(d, "l2", "Leases.ListResources", {"id": "nope"})
    call(d, "l2", "Leases.DeleteResource", {"id": "R", "resource": {"id": "k", "type": "snapshots/overlayfs"}})
    assert len(call(d, "l2", "Leases.ListResources", {"id": "R"})["resources"]) == 3


def test_unknown_lease_in_request_metadata_is_not_found(d):
    with pytest.raises(errdefs.NotFound, match="lease 'ghost'"):
        ingest(d, "l3", b"orphan", lease="ghost")
    assert not exists(d, "l3", sha256(b"orphan"))


def test_lease_holds_content_until_sync_delete(d):
    call(d, "l4", "Leases.Create", {"id": "hold"})
    digest = ingest(d, "l4", b"held by a lease", lease="hold")
    assert call(d, "l4", "Leases.ListResources", {"id": "hold"})["resources"] == [{"id": digest, "type": "content"}]
    call(d, "l4", "GC.Collect")
    assert exists(d, "l4", digest) and blob_on_disk(d, digest)
    assert call(d, "l4", "Leases.Delete", {"id": "hold", "sync": True}) == {"collected": True}
    assert not exists(d, "l4", digest) and not blob_on_disk(d, digest)


def test_expired_lease_stops_protecting(d):
    call(d, "l5", "Leases.Create", {"id": "old", "labels": {EXPIRE: rfc3339(time.time() - 60)}})
    call(d, "l5", "Leases.Create", {"id": "young", "labels": {EXPIRE: rfc3339(time.time() + 3600)}})
    gone = ingest(d, "l5", b"under an expired lease", lease="old")
    kept = ingest(d, "l5", b"under a live lease", lease="young")
    call(d, "l5", "GC.Collect")
    assert not exists(d, "l5", gone) and exists(d, "l5", kept)
    assert [le["id"] for le in call(d, "l5", "Leases.List")["leases"]] == ["young"]  # GC collected the lease


def test_leased_content_survives_collections_until_referenced(d):
    """Content committed under a lease is never collectable between its commit and the
    request that references it, however the collections interleave."""
    call(d, "l6", "Leases.Create", {"id": "pull"})
    stop = threading.Event()
    errors: list[BaseException] = []

    def collect_forever():
        try:
            with d.client(namespace="l6") as c:
                while not stop.is_set():
                    c.call("GC.Collect", {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    collector = threading.Thread(target=collect_forever)
    collector.start()
    children: dict[str, str] = {}
    try:
        for i in range(12):
            digest = ingest(d, "l6", f"layer {i}".encode(), lease="pull")
            assert exists(d, "l6", digest)
            children[f"containerd.io/gc.ref.content.l.{i}"] = digest
        root = ingest(d, "l6", b"manifest", lease="pull",
                      labels={"containerd.io/gc.root": "1", **children})
    finally:
        stop.set()
        collector.join()
    assert errors == []
    call(d, "l6", "Leases.Delete", {"id": "pull", "sync": True})
    for digest in [root, *children.values()]:
        assert exists(d, "l6", digest) and blob_on_disk(d, digest)


def test_sync_delete_without_a_collector_says_so(make_daemon):
    d = make_daemon("nogc", config={"disabled_plugins": ["io.dockyard.gc.v1.scheduler"]}).start()
    call(d, "default", "Leases.Create", {"id": "x"})
    assert call(d, "default", "Leases.Delete", {"id": "x", "sync": True}) == {"collected": False}
    assert call(d, "default", "Leases.List")["leases"] == []
