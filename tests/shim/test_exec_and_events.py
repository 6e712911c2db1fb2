"""Exec processes, the order of a task's events, pause/resume, pids, stats, OOM."""

from __future__ import annotations

import signal

import pytest

from tests.shim.conftest import needs_runc
from wire import errdefs

pytestmark = needs_runc


def exec_spec(args: list[str]) -> dict:
    return {"args": args, "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "terminal": False}


def test_whole_life_event_order_with_an_exec(shims):
    c, address, b = shims.create("c1", ["sleep", "30"])
    events = shims.events(address)
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Exec", {"id": "c1", "exec_id": "e1", "spec": exec_spec(["sh", "-c", "exit 7"])})
    with pytest.raises(errdefs.AlreadyExists):
        c.call("Task.Exec", {"id": "c1", "exec_id": "e1", "spec": exec_spec(["true"])})
    assert c.call("Task.State", {"id": "c1", "exec_id": "e1"})["status"] == "created"
    exec_pid = c.call("Task.Start", {"id": "c1", "exec_id": "e1"})["pid"]
    assert c.call("Task.Wait", {"id": "c1", "exec_id": "e1"})["exit_status"] == 7
    assert c.call("Task.Delete", {"id": "c1", "exec_id": "e1"})["pid"] == exec_pid
    with pytest.raises(errdefs.NotFound):
        c.call("Task.State", {"id": "c1", "exec_id": "e1"})
    c.call("Task.Kill", {"id": "c1", "signal": signal.SIGKILL})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    items = events.read_until(lambda items: any(e["topic"] == "/tasks/delete" for e in items))
    assert events.topics() == [
        ("/tasks/create", "c1"), ("/tasks/start", "c1"), ("/tasks/exec-added", "e1"),
        ("/tasks/exec-started", "e1"), ("/tasks/exit", "e1"), ("/tasks/exit", "c1"), ("/tasks/delete", "c1"),
    ]
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    exec_exit = items[4]["event"]
    assert (exec_exit["pid"], exec_exit["exit_status"], exec_exit["container_id"]) == (exec_pid, 7, "c1")
    assert all(e["namespace"] == "shimtest" and e["timestamp"] > 0 for e in items)
    c.call("Task.Shutdown", {"id": "c1"})


def test_exec_exits_are_published_before_the_init_exit(shims):
    c, address, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    for eid in ("e1", "e2"):
        c.call("Task.Exec", {"id": "c1", "exec_id": eid, "spec": exec_spec(["sleep", "30"])})
        c.call("Task.Start", {"id": "c1", "exec_id": eid})
    c.call("Task.Kill", {"id": "c1", "signal": signal.SIGKILL})  # the kernel kills the execs with it
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 137
    events = shims.events(address)
    events.read_until(lambda items: any(e["topic"] == "/tasks/exit" and e["event"]["id"] == "c1" for e in items))
    exits = [pid for topic, pid in events.topics() if topic == "/tasks/exit"]
    assert sorted(exits[:2]) == ["e1", "e2"] and exits[2] == "c1"
    with pytest.raises(errdefs.FailedPrecondition):  # no exec into a stopped task
        c.call("Task.Exec", {"id": "c1", "exec_id": "e3", "spec": exec_spec(["true"])})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_exec_sigterm_and_kill_after_exit(shims):
    c, _, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Exec", {"id": "c1", "exec_id": "e1", "spec": exec_spec(["sleep", "30"])})
    c.call("Task.Start", {"id": "c1", "exec_id": "e1"})
    c.call("Task.Kill", {"id": "c1", "exec_id": "e1", "signal": signal.SIGTERM})
    assert c.call("Task.Wait", {"id": "c1", "exec_id": "e1"})["exit_status"] == 143
    with pytest.raises(errdefs.NotFound):
        c.call("Task.Kill", {"id": "c1", "exec_id": "e1", "signal": 9})
    assert c.call("Task.State", {"id": "c1"})["status"] == "running"
    c.call("Task.Kill", {"id": "c1", "signal": 9, "all": True})
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 137
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_pause_resume_and_their_events(shims):
    c, address, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Pause", {"id": "c1"})
    assert c.call("Task.State", {"id": "c1"})["status"] == "paused"
    with pytest.raises(errdefs.FailedPrecondition):
        c.call("Task.Pause", {"id": "c1"})
    with pytest.raises(errdefs.FailedPrecondition):
        c.call("Task.Exec", {"id": "c1", "exec_id": "e1", "spec": exec_spec(["true"])})
    c.call("Task.Resume", {"id": "c1"})
    assert c.call("Task.State", {"id": "c1"})["status"] == "running"
    c.call("Task.Pause", {"id": "c1"})
    c.call("Task.Kill", {"id": "c1", "signal": signal.SIGKILL})  # a paused task can still be killed
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 137
    events = shims.events(address)
    events.read_until(lambda items: any(e["topic"] == "/tasks/exit" for e in items))
    assert [t for t, _ in events.topics()] == [
        "/tasks/create", "/tasks/start", "/tasks/paused", "/tasks/resumed", "/tasks/paused", "/tasks/exit"]
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_pids_name_exec_processes(shims):
    c, _, _ = shims.create("c1", ["sleep", "30"])
    init_pid = c.call("Task.Start", {"id": "c1"})["pid"]
    c.call("Task.Exec", {"id": "c1", "exec_id": "e1", "spec": exec_spec(["sleep", "30"])})
    exec_pid = c.call("Task.Start", {"id": "c1", "exec_id": "e1"})["pid"]
    pids = c.call("Task.Pids", {"id": "c1"})
    assert {"pid": init_pid, "exec_id": ""} in pids
    assert {"pid": exec_pid, "exec_id": "e1"} in pids
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_stats_and_update(shims):
    c, _, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Update", {"id": "c1", "resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}})
    stats = c.call("Task.Stats", {"id": "c1"})
    assert stats["pids_current"] >= 1
    assert stats["pids_limit"] == 50
    assert stats["memory_usage"] > 0
    assert stats["memory_limit"] == 64 << 20
    assert stats["cpu_usage_ns"] > 0
    with pytest.raises(errdefs.InvalidArgument):
        c.call("Task.Update", {"id": "c1", "resources": "lots"})
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_oom_kill_is_reported(shims):
    c, address, _ = shims.create("c1", ["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}"],
                                 memory_limit=16 << 20)
    c.call("Task.Start", {"id": "c1"})
    status = c.call("Task.Wait", {"id": "c1"})["exit_status"]
    events = shims.events(address)
    events.read_until(lambda items: any(e["topic"] == "/tasks/oom" for e in items))
    assert status != 0
    assert ("/tasks/oom", "c1") in events.topics()
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_quick_execs_never_exit_before_they_started(shims):
    c, address, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    for i in range(5):
        eid = f"q{i}"
        c.call("Task.Exec", {"id": "c1", "exec_id": eid, "spec": exec_spec(["sh", "-c", f"exit {i}"])})
        c.call("Task.Start", {"id": "c1", "exec_id": eid})
        assert c.call("Task.Wait", {"id": "c1", "exec_id": eid})["exit_status"] == i
    events = shims.events(address)
    events.read_until(lambda items: len([e for e in items if e["topic"] == "/tasks/exit"]) == 5)
    topics = events.topics()
    for i in range(5):
        assert topics.index(("/tasks/exec-started", f"q{i}")) < topics.index(("/tasks/exit", f"q{i}"))
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})
