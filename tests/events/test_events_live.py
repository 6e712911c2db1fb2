"""Events through a real daemon: the CLI, resume, slow subscribers, and the websocket with its token."""

import json
import subprocess
import threading
import time

import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from tests.support.daemon import BIN
from wire import errdefs


def test_cli_events_with_filter_and_resume(daemon):
    proc = subprocess.Popen([str(BIN / "dockyard"), "--address", daemon.address, "events", "--seq",
                             'topic~="^/namespaces/",namespace==keep', 'topic=="/never/seen"'], stdout=subprocess.PIPE)
    try:
        time.sleep(0.5)
        daemon.call("Namespaces.Create", {"name": "other"})
        daemon.call("Namespaces.Create", {"name": "keep"})
        daemon.call("Namespaces.Update", {"name": "keep", "labels": {"a": "b"}})
        line1 = proc.stdout.readline().decode()
        line2 = proc.stdout.readline().decode()
    finally:
        proc.kill()
        proc.wait()
    seq1, _, _, _, _, ns, topic, payload = line1.split(" ", 7)
    assert (ns, topic, json.loads(payload)) == ("keep", "/namespaces/create", {"name": "keep", "labels": {}})
    assert line2.split(" ")[6] == "/namespaces/update"
    # resume: everything after the first kept event
    with daemon.client() as c:
        stream = c.stream("Events.Subscribe", {"filters": [], "since": int(seq1)})
        item = next(stream)
    assert item["topic"] == "/namespaces/update" and item["seq"] == int(seq1) + 1


def test_since_older_than_the_backlog_is_refused_plainly(make_daemon):
    d = make_daemon(config={"plugins": {"io.dockyard.event.v1.exchange": {"backlog": 3}}}).start()
    try:
        for i in range(6):
            d.call("Namespaces.Create", {"name": f"n{i}"})
        with d.client() as c, pytest.raises(errdefs.OutOfRange, match="no longer kept"):
            next(c.stream("Events.Subscribe", {"since": 1}))
        r = d.cli("events", "--since", "1", check=False)
        assert r.returncode == 1 and "no longer kept" in r.stderr.decode()
    finally:
        d.stop()


def test_slow_socket_subscriber_is_cut_off_with_fell_behind(make_daemon):
    d = make_daemon(config={"plugins": {"io.dockyard.event.v1.exchange": {"subscriber_buffer": 8}}}).start()
    try:
        slow = d.client()
        stream = slow.stream("Events.Subscribe", {})
        fast = d.client()
        fast_stream = fast.stream("Events.Subscribe", {})
        seen_fast = []
        reader = threading.Thread(target=lambda: seen_fast.extend(next(fast_stream)["seq"] for _ in range(600)))
        reader.start()
        payload = {"blob": "x" * 4000}
        with d.client() as pub:
            for _ in range(600):  # ~2.4 MB: more than the socket buffers hold for the slow reader
                pub.call("Events.Publish", {"topic": "/test/flood", "event": payload})
        reader.join(30)
        assert seen_fast == list(range(seen_fast[0], seen_fast[0] + 600))
        got = 0
        with pytest.raises(errdefs.ResourceExhausted, match="fell behind at"):
            for _ in stream:
                got += 1
        assert 0 < got < 600
        slow.close()
        fast.close()
        assert d.call("Events.Stats")["dropped_subscribers"] == 1
    finally:
        d.stop()


async def _ws_messages(url, headers, count):
    async with open_websocket_url(url, extra_headers=headers) as ws:
        return [json.loads(await ws.get_message()) for _ in range(count)]


async def test_websocket_requires_the_token_and_streams_filtered_events(daemon):
    base = f"ws://{daemon.websocket_address}/events"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(base):
            pass
    assert rejected.value.status_code == 401
    with pytest.raises(ConnectionRejected):
        async with open_websocket_url(base, extra_headers=[(b"Authorization", b"Bearer wrong")]):
            pass
    auth = [(b"Authorization", f"Bearer {daemon.token}".encode())]
    url = base + "?filter=namespace%3D%3Dws"
    async with trio.open_nursery() as nursery:
        results = []

        async def listen():
            results.extend(await _ws_messages(url, auth, 2))

        nursery.start_soon(listen)
        await trio.sleep(0.5)
        await trio.to_thread.run_sync(daemon.call, "Namespaces.Create", {"name": "other"})
        await trio.to_thread.run_sync(daemon.call, "Namespaces.Create", {"name": "ws"})
        await trio.to_thread.run_sync(daemon.call, "Namespaces.Delete", {"name": "ws"})
    assert [(e["namespace"], e["topic"]) for e in results] == [("ws", "/namespaces/create"),
                                                               ("ws", "/namespaces/delete")]
    # resume on the websocket with the token as a query parameter
    since = results[0]["seq"] - 1
    resumed = await _ws_messages(f"{base}?token={daemon.token}&since={since}&filter=namespace%3D%3Dws", [], 2)
    assert [e["seq"] for e in resumed] == [e["seq"] for e in results]


async def test_websocket_resume_too_old_is_closed_with_a_reason(make_daemon):
    d = make_daemon(config={"plugins": {"io.dockyard.event.v1.exchange": {"backlog": 2}}}).start()
    try:
        for i in range(4):
            await trio.to_thread.run_sync(d.call, "Namespaces.Create", {"name": f"n{i}"})
        url = f"ws://{d.websocket_address}/events?since=0"
        async with open_websocket_url(url, extra_headers=[(b"Authorization", f"Bearer {d.token}".encode())]) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
        assert closed.value.reason.code == 4004
        assert "no longer kept" in closed.value.reason.reason
    finally:
        await trio.to_thread.run_sync(d.stop)
