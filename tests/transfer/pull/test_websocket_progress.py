"""A websocket consumer watches a pull that another client started (``/transfer/progress``)."""

from __future__ import annotations

import functools
import json
import urllib.parse
import uuid

import trio
from trio_websocket import open_websocket_url

from tests.transfer.pull.helpers import busybox_image, import_image, pull, push


async def test_a_websocket_consumer_watches_a_pull_another_client_started(registry, pusher, puller):
    image = busybox_image(b"websocket")
    await trio.to_thread.run_sync(import_image, pusher, "local/bb:ws", image)
    ref = f"{registry.host}/ws/{uuid.uuid4().hex[:8]}:1"
    await trio.to_thread.run_sync(functools.partial(push, pusher, ref, local="local/bb:ws"))
    wanted = f'namespace=="{puller.namespace}",topic=="/transfer/progress"'
    url = f"ws://{puller.websocket_address}/events?filter={urllib.parse.quote(wanted)}"
    auth = [(b"Authorization", f"Bearer {puller.token}".encode())]
    steps: list[dict] = []
    async with open_websocket_url(url, extra_headers=auth) as ws:
        with trio.fail_after(20):  # subscribed once a marker published now comes back
            subscribed = False
            while not subscribed:
                await trio.to_thread.run_sync(puller.call, "Events.Publish",
                                              {"topic": "/transfer/progress", "event": {"event": "marker"}})
                with trio.move_on_after(0.2):
                    subscribed = json.loads(await ws.get_message())["event"]["event"] == "marker"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, functools.partial(pull, puller, ref))
            with trio.fail_after(60):
                while not steps or steps[-1]["event"] != "done":
                    envelope = json.loads(await ws.get_message())
                    assert envelope["namespace"] == puller.namespace
                    if envelope["event"].get("parents") == [ref]:
                        steps.append(envelope["event"])
    events = [s["event"] for s in steps]
    assert events[:2] == ["resolving", "resolved"] and events[-2:] == ["saved", "done"]
    for layer in image.layers:
        mine = [s for s in steps if s["name"] == f"layer-{layer.digest}"]
        assert [s["event"] for s in mine][-2:] == ["extracting", "extracted"]
        assert any(s["event"] == "complete" and s["progress"] == layer.size for s in mine)
