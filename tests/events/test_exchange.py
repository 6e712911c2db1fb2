"""The exchange on its own: order, filters, backlog and resume, slow subscribers, sequence persistence."""

import pytest
import trio

from actors.events.exchange import Exchange, ExchangeConfig, FellBehind
from wire import errdefs


def make(tmp_path, **kw) -> Exchange:
    return Exchange(ExchangeConfig(**kw), str(tmp_path / "sequence"))


def drain(sub) -> list:
    out = []
    while True:
        try:
            out.append(sub.receive.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


async def test_every_subscriber_gets_every_matching_event_in_order(tmp_path):
    ex = make(tmp_path)
    all_ = ex.subscribe([])
    exits = ex.subscribe(['topic=="/tasks/exit"'])
    ns_b = ex.subscribe(["namespace==b"])
    either = ex.subscribe(['topic~="^/namespaces/"', "event.container_id==c1"])
    ex.publish("a", "/namespaces/create", {"name": "a"})
    ex.publish("b", "/tasks/exit", {"container_id": "c1", "exit_status": 3})
    ex.publish("b", "/tasks/start", {"container_id": "c2"})
    assert [e.seq for e in drain(all_)] == [1, 2, 3]
    assert [e.topic for e in drain(exits)] == ["/tasks/exit"]
    assert [e.seq for e in drain(ns_b)] == [2, 3]
    assert [e.seq for e in drain(either)] == [1, 2]


async def test_bad_filter_is_invalid_argument(tmp_path):
    with pytest.raises(errdefs.InvalidArgument):
        make(tmp_path).subscribe(["topic==/tasks/exit"])  # unquoted slash value: a parse error, as containerd


async def test_resume_since_gets_the_rest_without_gap_or_duplicate(tmp_path):
    ex = make(tmp_path, backlog=5)
    for i in range(8):
        ex.publish("ns", "/x/y", {"i": i})
    sub = ex.subscribe([], since=5)
    ex.publish("ns", "/x/y", {"i": 8})
    assert [e.seq for e in drain(sub)] == [6, 7, 8, 9]
    with pytest.raises(errdefs.OutOfRange, match="no longer kept: the oldest kept event is 5"):
        ex.subscribe([], since=2)
    assert ex.subscribe([], since=4) is not None  # exactly the oldest - 1 is fine
    with pytest.raises(errdefs.OutOfRange, match="ahead"):
        ex.subscribe([], since=99)


async def test_slow_subscriber_is_cut_off_and_others_are_not_slowed(tmp_path):
    ex = make(tmp_path, subscriber_buffer=4)
    slow = ex.subscribe([])
    fast = ex.subscribe([])
    got = []
    for i in range(10):
        ex.publish("ns", "/x/y", {"i": i})
        got.extend(drain(fast))
    assert [e.seq for e in got] == list(range(1, 11))
    assert isinstance(slow.closed, FellBehind) and slow.closed.seq == 5
    assert "fell behind at 5" in slow.closed.message
    assert slow.id not in ex.subscribers
    kept = []
    with pytest.raises(FellBehind):
        async for e in slow:
            kept.append(e.seq)
    assert kept == [1, 2, 3, 4]


async def test_sequence_numbers_survive_a_restart(tmp_path):
    ex = make(tmp_path)
    last = [ex.publish("ns", "/x/y", {}).seq for _ in range(3)][-1]
    again = make(tmp_path)  # as after kill -9: no clean shutdown
    first = again.publish("ns", "/x/y", {}).seq
    assert first > last
    with pytest.raises(errdefs.OutOfRange):
        again.subscribe([], since=last)  # the old backlog is gone and the client is told so
