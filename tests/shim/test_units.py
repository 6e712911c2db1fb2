"""Pure parts of the shim: transition table, flags, outbox, group sockets, options, figures, imports."""

from __future__ import annotations

import json
import subprocess
import sys

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shim import events as ev
from shim import group as grp
from shim.main import UsageError, parse_args
from shim.mount import MS_BIND, MS_RDONLY, MS_REC, MS_PRIVATE, parse_options
from shim.process import STATUS, TRANSITIONS, Process
from shim.reaper import exit_status
from shim.service import stats_figures
from wire import errdefs

ACTIONS = sorted({a for moves in TRANSITIONS.values() for a in moves} | {"pause", "resume", "delete", "kill"})


@settings(deadline=None, max_examples=300)
@given(st.lists(st.sampled_from(ACTIONS), max_size=12))
def test_transition_table_is_the_only_judge(actions):
    p = Process("c1", "", "/b")
    for action in actions:
        before = p.state
        allowed = TRANSITIONS[before].get(action)
        if allowed is None:
            with pytest.raises((errdefs.FailedPrecondition, errdefs.NotFound)):
                p.apply(action)
            assert p.state == before  # a refused step changes nothing
        else:
            p.apply(action)
            assert p.state == allowed
        assert p.status in ("created", "running", "pausing", "paused", "stopped")


def test_kill_of_a_finished_process_is_not_found_and_others_fail_precondition():
    p = Process("c1", "e1", "/b")
    p.apply("start")
    p.apply("started")
    p.apply("exit")
    with pytest.raises(errdefs.NotFound, match="c1/e1.*already finished"):
        p.check("kill")
    with pytest.raises(errdefs.FailedPrecondition, match="cannot start while stopped"):
        p.check("start")
    p.apply("delete")
    p.undo_delete()
    assert p.state == "stopped"


def test_every_state_has_a_status_word():
    assert set(STATUS) == set(TRANSITIONS)


@pytest.mark.parametrize(
    ("raw", "code"), [(0, 0), (3 << 8, 3), (9, 137), (15, 143), (255 << 8, 255)])
def test_exit_status_from_wait_status(raw, code):
    assert exit_status(raw) == code


def test_parse_args_go_style():
    flags, action = parse_args(["-namespace", "ns", "-address=/a.sock", "-id", "c1", "-debug", "start"])
    assert (flags["namespace"], flags["address"], flags["id"], flags["debug"], action) == ("ns", "/a.sock", "c1", True, "start")
    flags, action = parse_args(["--namespace", "ns", "-id", "c", "-bundle", "/b", "-publish-binary", "x", "delete"])
    assert (flags["bundle"], action) == ("/b", "delete")
    for bad in (["-nope", "start"], ["-id"], ["start", "delete"]):
        with pytest.raises(UsageError):
            parse_args(bad)


def test_event_log_orders_acks_and_keeps_an_outbox(tmp_path):
    b1, b2 = tmp_path / "b1", tmp_path / "b2"
    b1.mkdir()
    b2.mkdir()
    log = ev.EventLog("ns")
    seen = []
    log.subscribe("live", seen.append, after=0)
    log.emit("/tasks/create", {"container_id": "a"}, str(b1))
    log.emit("/tasks/create", {"container_id": "b"}, str(b2))
    log.emit("/tasks/exit", {"container_id": "a", "id": "a"}, str(b1))
    assert [e["seq"] for e in seen] == [1, 2, 3]
    assert [e["seq"] for e in log.since(1)] == [2, 3]
    log.ack(2)
    assert [e["seq"] for e in log.since(0)] == [3]
    assert [e["seq"] for e in ev.read_outbox(str(b1))] == [3]
    assert ev.read_outbox(str(b2)) == []
    late = []
    log.subscribe("late", late.append, after=0)
    assert [e["topic"] for e in late] == ["/tasks/exit"]
    log.unsubscribe("live")
    log.emit("/tasks/delete", {"container_id": "a"}, str(tmp_path / "gone"))  # bundle removed: memory only
    assert len(seen) == 3 and len(late) == 2
    log.ack(1)  # an old ack changes nothing
    assert log.pending_count() == 2


@settings(deadline=None, max_examples=100)
@given(st.lists(st.dictionaries(st.sampled_from(["seq", "topic", "event"]), st.integers(min_value=-2**63, max_value=2**64 - 1) | st.text(max_size=8)),
                max_size=5), st.integers(min_value=0, max_value=40))
def test_read_outbox_ignores_a_torn_tail(records, cut):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        _check_torn_outbox(Path(tmp), records, cut)


def _check_torn_outbox(d, records, cut):
    data = b"".join(msgpack.packb(r) for r in records)
    (d / ev.OUTBOX).write_bytes(data + msgpack.packb({"seq": 99, "topic": "/x"})[:cut % 12])
    got = ev.read_outbox(str(d))
    assert got[:len(records)] == records


def test_group_key_and_socket_path(tmp_path):
    b = tmp_path / "state" / grp.TASK_DIR / "ns" / "c1"
    b.mkdir(parents=True)
    (b / "config.json").write_text(json.dumps({"annotations": {grp.SANDBOX_ANNOTATION: "pod9"}}))
    assert grp.group_of(str(b), "c1") == "pod9"
    (b / "options.json").write_text(json.dumps({"group": "g1"}))
    assert grp.group_of(str(b), "c1") == "g1"
    assert grp.state_dir(str(b), "/elsewhere/d.sock") == str(tmp_path / "state")
    short = grp.socket_path("/run/dockyard/" + grp.TASK_DIR + "/ns/c1", "/run/dockyard/dockyard.sock", "ns", "g")
    assert short.startswith("/run/dockyard/s/") and len(short.rsplit("/", 1)[1]) == 64
    long = grp.socket_path("/" + "x" * 80 + "/" + grp.TASK_DIR + "/ns/c1", "/d.sock", "ns", "g")
    assert long.startswith(grp.FALLBACK_SOCKET_DIR + "/") and len(long) <= grp.SUN_PATH_MAX
    assert grp.socket_path(str(b), "/a.sock", "ns", "g") != grp.socket_path(str(b), "/b.sock", "ns", "g")


def test_mount_options():
    assert parse_options(["rbind", "ro"]) == (MS_BIND | MS_REC | MS_RDONLY, 0, "")
    assert parse_options(["ro", "rw", "rprivate", "lowerdir=/a:/b", "index=off"]) == (
        0, MS_PRIVATE | MS_REC, "lowerdir=/a:/b,index=off")


def test_stats_figures():
    data = {"cpu": {"usage": {"total": 5, "user": 3, "kernel": 2}},
            "memory": {"usage": {"usage": 10, "limit": 20, "max": 15}}, "pids": {"current": 2, "limit": 9}}
    figures = stats_figures(data)
    assert figures["cpu_usage_ns"] == 5 and figures["memory_limit"] == 20 and figures["pids_current"] == 2
    assert stats_figures({})["memory_usage"] == 0


def test_the_shim_imports_no_trio_no_attrs():
    code = ("import sys, shim.main, shim.server, shim.service, shim.title; "
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('trio', 'attrs', 'attr', 'cattrs', 'asyncio', 'subprocess', 'logging', 'hashlib', 'actors')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "[]"
