"""Push images with dockyard into a real registry and pull them back (another daemon, same registry)."""

from __future__ import annotations

import threading
import uuid

import pytest

from oci import mediatypes as mt
from oci.identity import LABEL_GC_REF_CONTENT_CONFIG, distribution_source_label, gc_snapshot_label
from tests.transfer.pull.helpers import (
    MultiPlatform, busybox_image, call_streaming, import_image, pull, push, push_blobs_direct,
)
from wire import errdefs


def repo() -> str:
    return f"pull/{uuid.uuid4().hex[:10]}"


def labels_of(daemon, digest, namespace=None):
    meta = {"namespace": namespace} if namespace else {}
    with daemon.client() as c:
        return c.call("Content.Info", {"digest": digest}, **meta)["info"]["labels"]


def has_content(daemon, digest) -> bool:
    try:
        daemon.call("Content.Info", {"digest": digest})
        return True
    except errdefs.NotFound:
        return False


def test_push_then_pull_round_trip_with_labels_unpack_and_no_leftovers(registry, pusher, puller):
    image = busybox_image(b"round-trip")
    import_image(pusher, "local/bb:1", image)
    ref = f"{registry.host}/{repo()}:1"
    result, steps = push(pusher, ref, local="local/bb:1")
    assert result["uploaded"] == 3 and result["target"]["digest"] == image.manifest.digest
    assert [s["event"] for s in steps if s["name"] == f"manifest-{image.manifest.digest}"][-1] == "complete"

    result, steps = pull(puller, ref)
    assert result["name"] == ref and result["target"]["digest"] == image.manifest.digest
    assert result["downloaded"] == sum(len(b) for b in image.blobs.values())
    record = puller.call("Images.Get", {"name": ref})["image"]
    assert record["target"]["digest"] == image.manifest.digest
    manifest_labels = labels_of(puller, image.manifest.digest)
    assert manifest_labels[LABEL_GC_REF_CONTENT_CONFIG] == image.config.digest
    assert manifest_labels["containerd.io/gc.ref.content.l.0"] == image.layers[0].digest
    assert manifest_labels["containerd.io/gc.ref.content.l.1"] == image.layers[1].digest
    path = ref.split("/", 1)[1].rsplit(":", 1)[0]
    for digest in image.blobs:
        assert labels_of(puller, digest)[distribution_source_label(registry.host)] == path
    chain = result["unpacked"]
    assert labels_of(puller, image.config.digest)[gc_snapshot_label("overlayfs")] == chain
    assert puller.call("Snapshots.Stat", {"snapshotter": "overlayfs", "key": chain})["info"]["name"] == chain
    # the layers were unpacked: their uncompressed digests are recorded
    assert labels_of(puller, image.layers[0].digest)["containerd.io/uncompressed"] == image.diff_ids[0]
    # nothing is left under the temporary lease or as an ingest
    assert puller.call("Content.ListStatuses", {})["statuses"] == []
    assert puller.call("Leases.List", {})["leases"] == []
    # phases, in order, for one layer: downloading → complete → extracting → extracted (coalescing may
    # skip intermediate ones on the stream, never reorder them)
    order = ["downloading", "complete", "extracting", "extracted"]
    layer_steps = [s["event"] for s in steps if s["name"] == f"layer-{image.layers[1].digest}"]
    assert layer_steps and layer_steps[-1] == "extracted"
    assert [order.index(e) for e in layer_steps] == sorted(order.index(e) for e in layer_steps)
    assert steps[0]["event"] == "resolving" and steps[-1]["event"] == "done"
    assert all(s["parents"] == [ref] for s in steps)


def test_pull_again_is_already_there_and_downloads_nothing(registry, pusher, puller):
    image = busybox_image(b"again")
    import_image(pusher, "local/bb:again", image)
    ref = f"{registry.host}/{repo()}:again"
    push(pusher, ref, local="local/bb:again")
    pull(puller, ref)
    result, steps = pull(puller, ref)
    assert result["downloaded"] == 0
    assert {s["event"] for s in steps if s["name"].startswith("layer-")} <= {"already exists", "extracting",
                                                                              "extracted"}


def test_pull_without_unpack_and_content_fetch(registry, pusher, puller):
    image = busybox_image(b"no-unpack")
    import_image(pusher, "local/bb:nu", image)
    ref = f"{registry.host}/{repo()}:nu"
    push(pusher, ref, local="local/bb:nu")
    result, steps = pull(puller, ref, unpack=False)
    assert result["unpacked"] == ""
    assert not any(s["event"].startswith("extract") for s in steps)
    assert gc_snapshot_label("overlayfs") not in labels_of(puller, image.config.digest)
    with pytest.raises(errdefs.NotFound):
        puller.call("Snapshots.Stat", {"snapshotter": "overlayfs", "key": image.diff_ids[0]})

    other = puller.namespace + "-other"
    fetched, _ = call_streaming(puller, "Content.Fetch", {"ref": ref, "plain_http": True}, namespace=other)
    assert fetched["target"]["digest"] == image.manifest.digest and fetched["unpacked"] == ""
    with puller.client() as c:
        assert c.call("Images.Get", {"name": ref}, namespace=other)["image"]["target"]["digest"] == \
            image.manifest.digest
    assert labels_of(puller, image.layers[0].digest, namespace=other)


def _multi_platform(registry, tag: str) -> tuple[str, MultiPlatform]:
    multi = MultiPlatform({"amd64": busybox_image(b"amd64-" + tag.encode()),
                           "arm64": busybox_image(b"arm64-" + tag.encode(), arch="arm64")})
    name = repo()
    manifests = [(img.manifest, img.manifest_bytes) for img in multi.images.values()]
    push_blobs_direct(registry.host, name, multi.blobs, manifests + [(multi.index, multi.index_bytes)], tag)
    return f"{registry.host}/{name}:{tag}", multi


def test_multi_platform_pulls_the_host_platform_or_what_is_asked(registry, puller):
    ref, multi = _multi_platform(registry, "multi")
    amd64, arm64 = multi.images["amd64"], multi.images["arm64"]
    result, _ = pull(puller, ref, unpack=False)
    assert result["target"]["digest"] == multi.index.digest
    assert has_content(puller, amd64.layers[1].digest)
    assert not has_content(puller, arm64.layers[1].digest)
    index_labels = labels_of(puller, multi.index.digest)
    assert index_labels["containerd.io/gc.ref.content.m.0"] == amd64.manifest.digest
    assert "containerd.io/gc.ref.content.m.1" not in index_labels

    result, _ = pull(puller, ref, platforms=["linux/arm64"])
    assert has_content(puller, arm64.layers[1].digest)
    assert result["unpacked"]  # the requested platform is the one unpacked

    with puller.client() as c:
        ns = {"namespace": puller.namespace + "-all"}
        res, _ = call_streaming(puller, "Transfer.Pull", {"ref": ref, "plain_http": True, "all_platforms": True,
                                                           "unpack": False}, **ns)
        labels = c.call("Content.Info", {"digest": multi.index.digest}, **ns)["info"]["labels"]
        assert {labels["containerd.io/gc.ref.content.m.0"], labels["containerd.io/gc.ref.content.m.1"]} == \
            {amd64.manifest.digest, arm64.manifest.digest}
        for image in (amd64, arm64):
            c.call("Content.Info", {"digest": image.layers[1].digest}, **ns)


def test_no_matching_platform_is_a_clear_not_found(registry, puller):
    ref, _ = _multi_platform(registry, "nomatch")
    with pytest.raises(errdefs.NotFound) as err:
        pull(puller, ref, platforms=["linux/s390x"])
    assert "no manifest for platform linux/s390x" in err.value.message
    assert "linux/amd64" in err.value.message and "linux/arm64" in err.value.message
    assert puller.call("Images.List", {})["images"] == []


def test_unknown_reference_is_not_found(registry, puller):
    with pytest.raises(errdefs.NotFound):
        pull(puller, f"{registry.host}/{repo()}:missing")


def test_push_chunked_then_cross_repo_mount(registry, pusher, puller):
    image = busybox_image(b"mount")
    import_image(pusher, "local/bb:m", image)
    first = f"{registry.host}/{repo()}:m"
    result, _ = push(pusher, first, local="local/bb:m", chunk_size=64 * 1024)
    assert result["uploaded"] == 3
    pull(puller, first, unpack=False)
    # the puller's blobs say where they came from: a push to another repo mounts them
    second = f"{registry.host}/{repo()}:m"
    result, steps = push(puller, second, local=first)
    assert result["mounted"] == 3 and result["uploaded"] == 0
    final = {s["name"]: s["event"] for s in steps if s["name"].startswith(("layer-", "config-"))}
    assert set(final.values()) == {"mounted"} and len(final) == 3
    again, _ = pull(pusher, second, unpack=False)
    assert again["target"]["digest"] == image.manifest.digest


def test_push_of_missing_image_is_not_found(registry, pusher):
    with pytest.raises(errdefs.NotFound):
        push(pusher, f"{registry.host}/{repo()}:x", local="nothing/here:1")


def test_progress_is_published_for_other_clients(registry, pusher, puller):
    image = busybox_image(b"events")
    import_image(pusher, "local/bb:ev", image)
    ref = f"{registry.host}/{repo()}:ev"
    push(pusher, ref, local="local/bb:ev")
    seen: list[dict] = []
    subscribed = threading.Event()

    def watch():
        with puller.client() as c:
            for envelope in c.stream("Events.Subscribe", {"filters": ['topic=="/transfer/progress"']}):
                if not subscribed.is_set():
                    subscribed.set()
                    continue
                seen.append(envelope)
                if envelope["event"]["event"] == "done":
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # a marker event tells us the subscription is live before the pull starts
    while not subscribed.is_set():
        puller.call("Events.Publish", {"topic": "/transfer/progress", "event": {"event": "marker"}})
        subscribed.wait(0.05)
    pull(puller, ref)
    watcher.join(20)
    assert not watcher.is_alive()
    steps = [e["event"] for e in seen if e["event"].get("parents") == [ref]]
    assert all(e["namespace"] == puller.namespace for e in seen if e["event"].get("parents") == [ref])
    events = [s["event"] for s in steps]
    assert events[0] == "resolving" and events[-1] == "done"
    for layer in image.layers:  # the busybox layer may be stored already (another test's namespace)
        mine = [s["event"] for s in steps if s["name"] == f"layer-{layer.digest}"]
        assert mine[-2:] == ["extracting", "extracted"]
        assert mine[:2] == ["downloading", "complete"] or mine[:1] == ["already exists"]
    unique = [s["event"] for s in steps if s["name"] == f"layer-{image.layers[1].digest}"]
    assert unique[:2] == ["downloading", "complete"]
    assert "saved" in events


def test_push_of_an_index_pulled_for_one_platform_names_what_is_missing(registry, puller):
    ref, multi = _multi_platform(registry, "partial")
    pull(puller, ref, unpack=False)
    with pytest.raises(errdefs.NotFound) as err:
        push(puller, f"{registry.host}/{repo()}:partial", local=ref)
    assert f"manifest-{multi.images['arm64'].manifest.digest}" in err.value.message


def test_gc_keeps_what_a_pull_labelled_and_a_digest_reference_pulls_the_same(registry, pusher, make_daemon):
    daemon = make_daemon("gc").start()  # GC runs across namespaces: a daemon of this test's own
    image = busybox_image(b"gc")
    import_image(pusher, "local/bb:gc", image)
    name = f"{registry.host}/{repo()}"
    push(pusher, f"{name}:gc", local="local/bb:gc")
    result, _ = pull(daemon, f"{name}:gc")
    chain = result["unpacked"]
    daemon.call("GC.Collect", {})
    for digest in image.blobs:
        assert has_content(daemon, digest)
    assert daemon.call("Snapshots.Stat", {"snapshotter": "overlayfs", "key": chain})["info"]["name"] == chain

    by_digest, _ = pull(daemon, f"{name}@{image.manifest.digest}", unpack=False)
    assert by_digest["name"] == f"{name}@{image.manifest.digest}"
    assert by_digest["target"]["digest"] == image.manifest.digest

    for ref in (f"{name}:gc", f"{name}@{image.manifest.digest}"):
        daemon.call("Images.Delete", {"name": ref, "sync": True})
    daemon.call("GC.Collect", {})
    assert not any(has_content(daemon, digest) for digest in image.blobs)
    with pytest.raises(errdefs.NotFound):
        daemon.call("Snapshots.Stat", {"snapshotter": "overlayfs", "key": chain})


def test_download_concurrency_is_bounded_and_configurable(registry, pusher, puller, make_daemon):
    from tests.transfer.image_builder import TestImage, layer

    image = TestImage([layer([(f"f{i}", f"{i}-{uuid.uuid4()}".encode())]) for i in range(4)])
    import_image(pusher, "local/four:1", image)
    ref = f"{registry.host}/{repo()}:four"
    push(pusher, ref, local="local/four:1")
    _, steps = pull(puller, ref, unpack=False, max_concurrent_downloads=1)
    waited = {s["name"] for s in steps if s["event"] == "waiting"}
    assert len(waited) >= 3  # one download at a time: the config and layers queued behind each other

    bad = make_daemon("bad-config", config={"plugins": {"io.dockyard.transfer.v1.registry": {
        "max_concurrent_downloads": 0}}}).start()
    plugins = {p["id"]: p for p in bad.call("Introspection.Plugins") if p["type"] == "io.dockyard.transfer.v1"}
    assert plugins["registry"]["status"] == "error" and "max_concurrent_downloads" in plugins["registry"]["error"]
