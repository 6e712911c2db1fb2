"""Daemon kill -9 and restart with running tasks; shim kill -9 — real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.runtime.helpers import Events, needs_runc, wait_for
from tests.support.processes import alive

pytestmark = needs_runc


@pytest.fixture
def rt(fresh_rt):
    return fresh_rt

TICKER = "while true; do echo tick; sleep 0.1; done"


def test_daemon_kill9_tasks_live_exits_reported_once_attach_works(rt):
    live_pid = rt.detached("live", "sh", "-c", TICKER)
    doomed_pid = rt.detached("doomed", "sleep", "1000")
    rt.daemon.kill9()
    os.kill(doomed_pid, signal.SIGKILL)  # exits while the daemon is down
    wait_for(lambda: not alive(doomed_pid), 5, "doomed to die")
    since = rt.sequence_reserved()
    rt.daemon.start()
    events = Events(rt.daemon, since=since)
    try:
        events.wait(lambda e: ("/tasks/exit", "doomed") in e.topics("doomed"))
        assert rt.status("live") == "running" and rt.task("live")["pid"] == live_pid
        assert rt.status("doomed") == "stopped" and rt.task("doomed")["exit_status"] == 137
        # attach to the survivor's output, then end it
        attach = subprocess.Popen([str(Path(sys.executable).parent / "dockyard"), "tasks", "attach", "live"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  env={**os.environ, "DOCKYARD_ADDRESS": rt.daemon.address})
        assert attach.stdout.readline() == b"tick\n"
        rt.cli("tasks", "kill", "-s", "KILL", "live")
        out, err = attach.communicate(timeout=20)
        assert attach.returncode == 137, err
        time.sleep(0.2)
        exits = [t for t in events.topics() if t[0] == "/tasks/exit"]
        assert exits.count(("/tasks/exit", "doomed")) == 1 and exits.count(("/tasks/exit", "live")) == 1
    finally:
        events.close()
    # a second restart repeats nothing
    rt.daemon.kill9()
    since = rt.sequence_reserved()
    rt.daemon.start()
    events = Events(rt.daemon, since=since)
    try:
        assert {t["container_id"]: t["status"] for t in rt.daemon.call("Tasks.List")["tasks"]} == {
            "live": "stopped", "doomed": "stopped"}
        time.sleep(0.5)
        assert [t for t in events.topics() if t[0] == "/tasks/exit"] == []
    finally:
        events.close()
    rt.cli("tasks", "rm", "live", "doomed")
    rt.cli("containers", "rm", "live", "doomed")


def test_shim_kill9_reports_stopped_and_cleans_up(rt):
    events = Events(rt.daemon)
    try:
        pid = rt.detached("victim", "sleep", "1000")
        shim = rt.shim_pid("victim")
        waiter = subprocess.Popen([str(Path(sys.executable).parent / "dockyard"), "tasks", "wait", "victim"],
                                  env={**os.environ, "DOCKYARD_ADDRESS": rt.daemon.address},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.3)  # the wait is in the shim when it dies
        os.kill(shim, signal.SIGKILL)
        # a wait that arrives while the dead shim is being buried gets the exit too, not "shim gone"
        late = [subprocess.Popen([str(Path(sys.executable).parent / "dockyard"), "tasks", "wait", "victim"],
                                 env={**os.environ, "DOCKYARD_ADDRESS": rt.daemon.address},
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(3)]
        events.wait(lambda e: ("/tasks/exit", "victim") in e.topics("victim"))
        task = rt.task("victim")
        assert task["status"] == "stopped" and task["exit_status"] in (137, 255)
        assert not alive(pid)
        assert not (rt.bundle_root / "default" / "victim").exists()
        assert not rt.runc_list() and not rt.mounts()
        assert rt.cli("tasks", "wait", "victim", check=False).returncode == task["exit_status"]
        for w in (waiter, *late):
            _, err = w.communicate(timeout=20)
            assert w.returncode == task["exit_status"], err  # a waiter gets the exit, not an error
        rt.cli("tasks", "rm", "victim")
        events.wait(lambda e: ("/tasks/delete", "victim") in e.topics("victim"))
    finally:
        events.close()
    assert [t for t in events.topics("victim") if t[0] == "/tasks/exit"] == [("/tasks/exit", "victim")]
    rt.cli("containers", "rm", "victim")


def test_dead_shim_found_at_start_is_cleaned(rt):
    rt.detached("gone", "sleep", "1000")
    shim = rt.shim_pid("gone")
    rt.daemon.kill9()
    os.kill(shim, signal.SIGKILL)
    wait_for(lambda: not alive(shim), 5, "shim to die")
    since = rt.sequence_reserved()
    rt.daemon.start()
    events = Events(rt.daemon, since=since)
    try:
        events.wait(lambda e: ("/tasks/exit", "gone") in e.topics("gone"))
        wait_for(lambda: not (rt.bundle_root / "default" / "gone").exists(), 5, "bundle removal")
        assert rt.status("gone") == "stopped"
        assert not rt.runc_list() and not rt.mounts()
    finally:
        events.close()
    rt.cli("tasks", "rm", "gone")
    rt.cli("containers", "rm", "gone")


def test_wedged_shim_is_set_aside_at_start_then_rejoins(make_daemon, rootfs):
    from tests.runtime.helpers import Runtime

    rt = Runtime(make_daemon("wedge", config={"timeouts": {"io.dockyard.timeout.shim.load": "1s"}}), rootfs)
    rt.daemon.start()
    shim = None
    try:
        rt.detached("stuck", "sleep", "1000")
        rt.detached("fine", "sleep", "1000")
        shim = rt.shim_pid("stuck")
        rt.daemon.kill9()
        os.kill(shim, signal.SIGSTOP)
        started = time.monotonic()
        rt.daemon.start()
        assert time.monotonic() - started < 8  # the wedged shim costs its budget, not a hang
        assert rt.status("fine") == "running"
        assert rt.status("stuck") == "unknown"
        os.kill(shim, signal.SIGCONT)
        wait_for(lambda: rt.status("stuck") == "running", 10, "the shim to rejoin")
    finally:
        if shim is not None:
            os.kill(shim, signal.SIGCONT)
        left = rt.cleanup()
    assert not left, left
