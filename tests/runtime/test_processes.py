"""exec, pause/resume, ps, metrics, OOM and the event order of a task's whole life."""

from __future__ import annotations

import pytest

from tests.runtime.helpers import Events, needs_runc, wait_for
from wire import errdefs

pytestmark = needs_runc


def test_whole_life_event_order_with_exec(rt):
    events = Events(rt.daemon)
    try:
        pid = rt.detached("life", "sh", "-c", "while true; do sleep 0.05; done")
        r = rt.cli("tasks", "exec", "--exec-id", "e1", "life", "sh", "-c", "echo in-exec; exit 7", check=False)
        assert (r.returncode, r.stdout) == (7, b"in-exec\n")
        rt.cli("tasks", "kill", "-s", "KILL", "life")
        assert rt.cli("tasks", "wait", "life", check=False).returncode == 137
        rt.cli("tasks", "rm", "life")
        events.wait(lambda e: ("/tasks/delete", "life") in e.topics("life"))
    finally:
        events.close()
    assert events.topics("life") == [
        ("/tasks/create", "life"), ("/tasks/start", "life"), ("/tasks/exec-added", "e1"),
        ("/tasks/exec-started", "e1"), ("/tasks/exit", "e1"), ("/tasks/exit", "life"), ("/tasks/delete", "life")]
    by_topic = {(e["topic"], e["event"].get("id") or e["event"].get("exec_id")): e["event"] for e in events.items}
    assert by_topic[("/tasks/exit", "e1")]["exit_status"] == 7
    exit_init = by_topic[("/tasks/exit", "life")]
    assert exit_init["pid"] == pid and exit_init["exit_status"] == 137 and exit_init["exited_at"] > 0
    assert all(e["namespace"] == "default" for e in events.items)
    rt.cli("containers", "rm", "life")


def test_exec_needs_a_live_task_and_ids_are_checked(rt):
    rt.detached("ex", "sleep", "1000")
    with pytest.raises(errdefs.InvalidArgument):
        rt.daemon.call("Tasks.Exec", {"container_id": "ex", "exec_id": "bad id", "spec": {"args": ["true"]}})
    r = rt.cli("tasks", "exec", "--exec-id", "e2", "ex", "cat", "/proc/self/status", check=False)
    assert r.returncode == 0 and b"NoNewPrivs:\t1" in r.stdout
    rt.cli("tasks", "rm", "-f", "ex")
    with pytest.raises(errdefs.NotFound):
        rt.daemon.call("Tasks.Exec", {"container_id": "ex", "exec_id": "e3", "spec": {"args": ["true"]}})
    rt.cli("containers", "rm", "ex")


def test_pause_resume_ps_and_metrics(rt):
    events = Events(rt.daemon)
    try:
        pid = rt.detached("pr", "sh", "-c", "sleep 1000 & wait")
        rt.cli("tasks", "pause", "pr")
        assert rt.status("pr") == "paused"
        assert rt.cli("tasks", "ls").stdout.decode().splitlines()[1].split()[2] == "PAUSED"
        with pytest.raises(errdefs.DockyardError):
            rt.daemon.call("Tasks.Pause", {"container_id": "pr"})
        rt.cli("tasks", "resume", "pr")
        assert rt.status("pr") == "running"
        events.wait(lambda e: ("/tasks/resumed", "pr") in e.topics("pr"))
        assert ("/tasks/paused", "pr") in events.topics("pr")
    finally:
        events.close()
    lines = rt.cli("tasks", "ps", "pr").stdout.decode().splitlines()
    assert lines[0].split() == ["PID", "INFO"]
    pids = [int(line.split()[0]) for line in lines[1:]]
    assert pid in pids and len(pids) == 2  # sh and its sleep
    out = rt.cli("tasks", "metrics", "pr").stdout.decode()
    assert out.splitlines()[0].split() == ["ID", "TIMESTAMP"] and "METRIC" in out
    metrics = rt.daemon.call("Tasks.Metrics", {"filters": ["id==pr"]})["metrics"]
    assert metrics[0]["id"] == "pr" and metrics[0]["data"]
    rt.cli("tasks", "rm", "-f", "pr")
    rt.cli("containers", "rm", "pr")


def test_memory_limit_oom_kill_is_reported(rt):
    events = Events(rt.daemon)
    try:
        r = rt.run("oom", "sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?",
                   flags=("--rm", "--memory-limit", str(16 << 20)))
        assert (r.returncode, r.stdout) == (0, b"dd=137\n"), r.stderr
        events.wait(lambda e: ("/tasks/oom", "oom") in e.topics("oom"))
    finally:
        events.close()


def test_update_resources(rt):
    rt.detached("up", "sleep", "1000", flags=("--memory-limit", str(64 << 20)))
    rt.daemon.call("Tasks.Update", {"container_id": "up", "resources": {"memory": {"limit": 32 << 20}}})
    data = rt.daemon.call("Tasks.Metrics", {"filters": ["id==up"]})["metrics"][0]["data"]
    limit = next((v for k, v in data.items() if "limit" in k and "memory" in k), None)
    assert limit == 32 << 20, data
    rt.cli("tasks", "rm", "-f", "up")
    rt.cli("containers", "rm", "up")


def test_a_shim_group_serves_several_containers_with_one_process(rt):
    for cid in ("g1", "g2", "g3"):
        rt.detached(cid, "sleep", "1000", flags=("--runtime-group", "grp"))
    assert len(rt.shims()) == 1  # the zygote is not a shim
    assert len({(rt.bundle_root / "default" / c / "bootstrap.json").read_text() for c in ("g1", "g2", "g3")}) == 1
    rt.cli("tasks", "rm", "-f", "g1")
    assert rt.status("g2") == "running"  # the shim stays while it serves others
    r = rt.run("g4", "echo", "joined", flags=("--rm", "--runtime-group", "grp"))
    assert (r.returncode, r.stdout) == (0, b"joined\n"), r.stderr
    rt.cli("tasks", "rm", "-f", "g2", "g3")
    wait_for(lambda: not rt.shims(), 10, "the group's shim to exit after its last container")
    rt.cli("containers", "rm", "g1", "g2", "g3")
