"""Images service against a real daemon: create/get/list/update/delete, filters, events, validation."""

from __future__ import annotations

import pytest

from wire import errdefs

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def target(digest=DIGEST_A, media_type=MANIFEST, size=10, annotations=None):
    return {"media_type": media_type, "digest": digest, "size": size, "annotations": annotations or {}}


def image(name, **kw):
    labels = kw.pop("labels", {})
    return {"name": name, "target": target(**kw), "labels": labels}


def test_create_get_list_delete(daemon):
    created = daemon.call("Images.Create", {"image": image("docker.io/library/a:1", labels={"x": "1"})})["image"]
    assert created["name"] == "docker.io/library/a:1"
    assert created["created_at"] > 0 and created["created_at"] == created["updated_at"]
    got = daemon.call("Images.Get", {"name": "docker.io/library/a:1"})["image"]
    assert got["target"]["digest"] == DIGEST_A and got["labels"] == {"x": "1"}
    with pytest.raises(errdefs.AlreadyExists, match="a:1"):
        daemon.call("Images.Create", {"image": image("docker.io/library/a:1")})
    daemon.call("Images.Create", {"image": image("b", digest=DIGEST_B, media_type=INDEX)})
    assert [i["name"] for i in daemon.call("Images.List", {})["images"]] == ["b", "docker.io/library/a:1"]
    daemon.call("Images.Delete", {"name": "b"})
    with pytest.raises(errdefs.NotFound, match="'b'"):
        daemon.call("Images.Get", {"name": "b"})
    with pytest.raises(errdefs.NotFound):
        daemon.call("Images.Delete", {"name": "b"})


def test_namespaces_are_separate_and_required(daemon):
    daemon.call("Images.Create", {"image": image("one")})
    with daemon.client(namespace="other") as c:
        assert c.call("Images.List", {}) == {"images": []}
        with pytest.raises(errdefs.NotFound):
            c.call("Images.Get", {"name": "one"})
    with daemon.client(namespace=None) as c, pytest.raises(errdefs.FailedPrecondition, match="namespace"):
        c.call("Images.List", {})


@pytest.mark.parametrize("bad, match", [
    (image(""), "name must not be empty"),
    (image("x", digest="sha256:zz"), "digest"),
    (image("x", size=0), "size"),
    (image("x", media_type=""), "media type"),
    (image("x", labels={"k": "v" * 5000}), "4096"),
])
def test_validation(daemon, bad, match):
    with pytest.raises(errdefs.InvalidArgument, match=match):
        daemon.call("Images.Create", {"image": bad})


def test_filters(daemon):
    daemon.call("Images.Create", {"image": image("docker.io/x/a:1", labels={"env": "prod"},
                                                annotations={"org.example/k": "v"})})
    daemon.call("Images.Create", {"image": image("docker.io/x/b:1", digest=DIGEST_B, media_type=INDEX)})

    def names(*flt):
        return [i["name"] for i in daemon.call("Images.List", {"filters": list(flt)})["images"]]

    assert names("name==docker.io/x/b:1") == ["docker.io/x/b:1"]
    assert names(f"target.digest=={DIGEST_A}") == ["docker.io/x/a:1"]
    assert names(f'target.mediatype=="{INDEX}"') == ["docker.io/x/b:1"]
    assert names("labels.env==prod") == ["docker.io/x/a:1"]
    assert names('annotations."org.example/k"') == ["docker.io/x/a:1"]
    assert names("labels.env==prod", "name~=b") == ["docker.io/x/a:1", "docker.io/x/b:1"]
    with pytest.raises(errdefs.InvalidArgument):
        names("name==/bad")


def test_update_masks(daemon):
    daemon.call("Images.Create", {"image": image("u", labels={"a": "1", "b": "2"}, annotations={"n": "1"})})
    one = daemon.call("Images.Update", {"image": image("u", labels={"a": "9", "c": "3"}),
                                        "update_mask": ["labels.a"]})["image"]
    assert one["labels"] == {"a": "9", "b": "2"}
    two = daemon.call("Images.Update", {"image": image("u", labels={}), "update_mask": ["labels.b"]})["image"]
    assert two["labels"] == {"a": "9"}
    three = daemon.call("Images.Update", {"image": image("u", annotations={"m": "2"}),
                                          "update_mask": ["annotations.m"]})["image"]
    assert three["target"]["annotations"] == {"n": "1", "m": "2"}
    four = daemon.call("Images.Update", {"image": image("u", digest=DIGEST_B, size=99),
                                         "update_mask": ["target"]})["image"]
    assert four["target"]["digest"] == DIGEST_B and four["labels"] == {"a": "9"}
    assert four["created_at"] == one["created_at"] and four["updated_at"] > one["updated_at"]
    whole = daemon.call("Images.Update", {"image": image("u", labels={"z": "1"})})["image"]
    assert whole["labels"] == {"z": "1"} and whole["target"]["digest"] == DIGEST_A
    with pytest.raises(errdefs.InvalidArgument, match="cannot update 'name'"):
        daemon.call("Images.Update", {"image": image("u"), "update_mask": ["name"]})
    with pytest.raises(errdefs.InvalidArgument, match="size"):
        daemon.call("Images.Update", {"image": image("u", size=0), "update_mask": ["target"]})
    with pytest.raises(errdefs.NotFound):
        daemon.call("Images.Update", {"image": image("missing")})


def test_delete_with_target_check(daemon):
    daemon.call("Images.Create", {"image": image("t")})
    with pytest.raises(errdefs.NotFound, match="has target"):
        daemon.call("Images.Delete", {"name": "t", "target": target(digest=DIGEST_B)})
    daemon.call("Images.Delete", {"name": "t", "target": target(), "sync": True})
    assert daemon.call("Images.List", {}) == {"images": []}


def test_events(daemon):
    with daemon.client() as sub:
        stream = sub.stream("Events.Subscribe", {"filters": ['topic~="/images/"']})
        daemon.call("Images.Create", {"image": image("e", labels={"k": "v"})})
        daemon.call("Images.Update", {"image": image("e"), "update_mask": ["labels.k"]})
        daemon.call("Images.Delete", {"name": "e"})
        got = [next(stream) for _ in range(3)]
        stream.close()
    assert [(e["topic"], e["namespace"]) for e in got] == [
        ("/images/create", "default"), ("/images/update", "default"), ("/images/delete", "default")]
    assert got[0]["event"] == {"name": "e", "labels": {"k": "v"}}
    assert got[1]["event"] == {"name": "e", "labels": {}}
    assert got[2]["event"] == {"name": "e"}


def test_lease_holds_only_expiring_images(daemon):
    lease = daemon.call("Leases.Create", {"id": "l1"})["lease"]["id"]
    with daemon.client(lease=lease) as c:
        c.call("Images.Create", {"image": image("plain")})
        c.call("Images.Create", {"image": image("temp", labels={"containerd.io/gc.expire": "2100-01-01T00:00:00Z"})})
        c.call("Images.Update", {"image": image("plain", labels={"x": "1"}), "update_mask": ["labels.x"]})
    resources = daemon.call("Leases.ListResources", {"id": lease})["resources"]
    assert [(r["type"], r["id"]) for r in resources] == [("images", "temp")]
    with daemon.client(lease="missing") as c, pytest.raises(errdefs.NotFound, match="lease"):
        c.call("Images.Create", {"image": image("x", labels={"containerd.io/gc.expire": "2100-01-01T00:00:00Z"})})
