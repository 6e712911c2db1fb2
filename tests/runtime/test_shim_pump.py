"""ShimProxy._pump surfaces a failed connection as its own error kind, never as an exception group.

`_run` decides between "reconnect" and "the shim is gone" by the kind of error; a group escaped
every `except` there and crashed the proxy, which under many concurrent deletes used up the
`shims` supervisor's restart intensity.
"""

from __future__ import annotations

import pytest
import trio

from actors.runtime.shim import Shim, ShimProxy
from wire import errdefs


class FakeClient:
    """One event, then the connection drops; acks succeed or fail as told."""

    def __init__(self, *, ack_error: Exception | None = None, stream_error: Exception | None = None) -> None:
        self.ack_error = ack_error
        self.stream_error = stream_error
        self.acks: list[int] = []

    async def call(self, method: str, params: dict, **_kw):
        assert method == "Task.Ack"
        if self.ack_error is not None:
            raise self.ack_error
        self.acks.append(params["seq"])
        return {}

    async def stream(self, method: str, params: dict):
        assert method == "Task.Events"
        yield {"seq": params["after"] + 1, "topic": "/tasks/start", "event": {"container_id": "c1", "pid": 7}}
        await trio.sleep(0.05)  # let the acker run
        if self.stream_error is not None:
            raise self.stream_error
        await trio.sleep_forever()


def make_proxy(tmp_path) -> tuple[ShimProxy, list]:
    published: list = []

    async def on_gone(_shim) -> None:
        raise AssertionError("not called by _pump")

    shim = Shim(address="unix:///nonexistent.sock", namespace="default", binary="shim",
                state_dir=str(tmp_path))
    proxy = ShimProxy(shim, publish=lambda *a: published.append(a), on_gone=on_gone,
                      call_timeout=1.0, connect_timeout=1.0)
    return proxy, published


async def test_a_dropped_stream_raises_unavailable_itself(tmp_path):
    proxy, published = make_proxy(tmp_path)
    client = FakeClient(stream_error=errdefs.Unavailable("connection closed by peer"))
    with pytest.raises(errdefs.Unavailable, match="closed by peer"):
        await proxy._pump(client)
    assert [p[1] for p in published] == ["/tasks/start"]
    assert client.acks == [1]
    assert proxy.shim.acked == 1


async def test_a_failed_ack_ends_the_pump_with_its_error(tmp_path):
    proxy, published = make_proxy(tmp_path)
    client = FakeClient(ack_error=errdefs.DeadlineExceeded("Task.Ack: no reply within 1s"))
    with trio.fail_after(5):
        with pytest.raises(errdefs.DeadlineExceeded):
            await proxy._pump(client)
    assert len(published) == 1  # published once; the shim re-sends it after the reconnect only if unacked
