"""Interrupted pulls resume from their ingest offset; a blob with the wrong bytes is never committed."""

from __future__ import annotations

import uuid

import pytest

from tests.transfer.pull.helpers import (
    StallingProxy, in_thread, layer_blob_path, pull, push_blobs_direct, random_image, wait_for,
    watch_progress,
)
from wire import errdefs

BIG = 6 << 20  # bytes of the layer that gets interrupted
STALL_AFTER = 2 << 20


def publish(registry_host: str, image, tag: str = "1") -> str:
    name = f"resume/{uuid.uuid4().hex[:10]}"
    push_blobs_direct(registry_host, name, image.blobs, [(image.manifest, image.manifest_bytes)], tag)
    return f"{name}:{tag}"


def partial_offset(daemon, ref_name: str) -> int:
    for status in daemon.call("Content.ListStatuses", {})["statuses"]:
        if status["ref"] == ref_name:
            return status["offset"]
    return 0


def first_download(steps, name):
    return next(s for s in steps if s["name"] == name and s["event"] in ("downloading", "complete"))


def test_registry_dies_mid_blob_and_the_pull_resumes_after_restart(own_registry, puller):
    registry = own_registry()
    port = int(registry.host.rsplit(":", 1)[1])
    image = random_image(BIG)
    path = publish(registry.host, image)
    layer_ref = f"layer-{image.layers[0].digest}"
    proxy = StallingProxy(registry.host, stall_after=STALL_AFTER)
    try:
        ref = f"{proxy.host}/{path}"
        thread, box = in_thread(pull, puller, ref, unpack=False)
        assert proxy.stalled.wait(20)
        offset = wait_for(lambda: partial_offset(puller, layer_ref), timeout=20)
        registry.stop()  # the registry dies with the download half done
        proxy.cut()
        thread.join(30)
        assert isinstance(box.get("error"), (errdefs.Unavailable, errdefs.DeadlineExceeded)), box
        assert partial_offset(puller, layer_ref) == offset > 0
        with pytest.raises(errdefs.NotFound):
            puller.call("Images.Get", {"name": ref})

        own_registry(port=port)  # back, on the same storage
        proxy.release()
        result, steps = pull(puller, ref, unpack=False)
        assert first_download(steps, layer_ref)["progress"] == offset  # resumed, not restarted
        # the layer's first bytes were not fetched again (small documents may be, if GC took them)
        assert image.layers[0].size - offset <= result["downloaded"] < image.layers[0].size
        assert puller.call("Content.Info", {"digest": image.layers[0].digest})["info"]["size"] == \
            image.layers[0].size
        assert puller.call("Content.ListStatuses", {})["statuses"] == []
        assert any(line.startswith(f"GET /v2/{path.split(':')[0]}/blobs/{image.layers[0].digest}")
                   for line in proxy.requests)
    finally:
        proxy.close()


def test_kill9_of_the_daemon_mid_pull_resumes_after_restart(registry, make_daemon):
    daemon = make_daemon("crashing").start()
    image = random_image(BIG)
    path = publish(registry.host, image)
    layer_ref = f"layer-{image.layers[0].digest}"
    proxy = StallingProxy(registry.host, stall_after=STALL_AFTER)
    try:
        ref = f"{proxy.host}/{path}"
        thread, box = in_thread(pull, daemon, ref)
        assert proxy.stalled.wait(20)
        offset = wait_for(lambda: partial_offset(daemon, layer_ref), timeout=20)
        daemon.kill9()
        thread.join(30)
        assert "error" in box
        proxy.cut()
        proxy.release()
        daemon.start()
        assert partial_offset(daemon, layer_ref) == offset > 0
        result, steps = pull(daemon, ref)
        assert first_download(steps, layer_ref)["progress"] == offset
        assert result["unpacked"]
        assert daemon.call("Images.Get", {"name": ref})["image"]["target"]["digest"] == image.manifest.digest
        assert daemon.call("Content.ListStatuses", {})["statuses"] == []
    finally:
        proxy.close()


def test_a_blob_with_the_wrong_bytes_is_rejected_and_nothing_is_committed(registry, puller):
    image = random_image(256 << 10)
    path = publish(registry.host, image)
    blob = layer_blob_path(registry.root, image.layers[0].digest)
    data = bytearray(blob.read_bytes())
    data[1000] ^= 0xFF  # same size, other bytes: the registry serves it under the old digest
    blob.write_bytes(bytes(data))
    ref = f"{registry.host}/{path}"
    with pytest.raises(errdefs.DataLoss) as err:
        pull(puller, ref)
    assert image.layers[0].digest in err.value.message
    with pytest.raises(errdefs.NotFound):
        puller.call("Content.Info", {"digest": image.layers[0].digest})
    assert puller.call("Content.ListStatuses", {})["statuses"] == []
    assert puller.call("Images.List", {})["images"] == []
    # a second try fails the same way (no poisoned partial ingest left to resume)
    with pytest.raises(errdefs.DataLoss):
        pull(puller, ref)


def test_concurrent_pulls_of_a_shared_blob_fetch_it_once(registry, puller):
    shared = random_image(BIG)
    a = random_image(1 << 10, seed=b"a")
    b = random_image(1 << 10, seed=b"b")
    # two images whose bottom layer is the same big blob
    from tests.transfer.image_builder import TestImage, layer

    big_tar = shared.blobs[shared.layers[0].digest]
    first = TestImage([big_tar, layer([("which", b"first")])], compress=False)
    second = TestImage([big_tar, layer([("which", b"second")])], compress=False)
    del a, b
    path_a, path_b = publish(registry.host, first), publish(registry.host, second)
    big = f"layer-{first.layers[0].digest}"
    proxy = StallingProxy(registry.host, stall_after=STALL_AFTER)
    try:
        ref_a, ref_b = f"{proxy.host}/{path_a}", f"{proxy.host}/{path_b}"
        watcher, waiting = watch_progress(
            puller, lambda env: env["event"].get("parents") == [ref_b] and env["event"]["name"] == big
            and env["event"]["event"] == "waiting")
        thread_a, box_a = in_thread(pull, puller, ref_a, unpack=False)
        assert proxy.stalled.wait(20)
        other = puller.namespace + "-b"  # another namespace, same daemon: still one download
        thread_b, box_b = in_thread(pull, puller, ref_b, unpack=False, namespace=other)
        assert waiting.wait(20)
        proxy.release()
        thread_a.join(30)
        thread_b.join(30)
        watcher.join(5)
        assert "result" in box_a and "result" in box_b, (box_a, box_b)
        blob_gets = [r for r in proxy.requests if r.startswith("GET") and first.layers[0].digest in r]
        assert len(blob_gets) == 1
        _, steps_b = box_b["result"]
        assert [s["event"] for s in steps_b if s["name"] == big][-1] == "already exists"
        with puller.client() as c:
            assert c.call("Content.Info", {"digest": first.layers[0].digest}, namespace=other)["info"]["size"]
    finally:
        proxy.close()
