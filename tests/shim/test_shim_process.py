"""The shim as a process: start protocol, grouping, detachment, delete mode, event replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import msgpack
import pytest

from tests.shim.conftest import needs_runc
from tests.shim.harness import NAMESPACE, SHIM, alive, wait_gone
from wire import errdefs

pytestmark = needs_runc


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def test_start_detaches_and_survives_its_parent(shims):
    b = shims.bundle("c1", ["sleep", "30"])
    address = shims.start_shim("c1", via_shell=True)  # sh runs start, start exits, sh exits
    shim_pid = int((b / "shim.pid").read_text())
    fields = _stat(shim_pid)
    ppid, sid = int(fields[1]), int(fields[3])
    assert ppid not in (os.getpid(),)  # nobody here waits for it
    assert sid != os.getsid(0)  # its own session ...
    assert sid != shim_pid  # ... without leading it (double fork)
    with open(f"/proc/{shim_pid}/cmdline", "rb") as fh:
        assert fh.read().startswith(f"dockyard-shim-runc-v1 {NAMESPACE}/c1".encode())
    c = shims.client(address)
    assert c.call("Task.Connect", {"id": "c1"})["shim_pid"] == shim_pid
    c.call("Task.Create", {"id": "c1", "bundle": str(b)})
    c.call("Task.Start", {"id": "c1"})
    assert c.call("Task.Connect", {"id": "c1"})["task_pid"] > 0
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})
    assert wait_gone(shim_pid)
    assert not os.path.exists(address)  # the shim removed its socket on the way out


def test_a_group_shares_one_shim(shims):
    b1 = shims.bundle("c1", ["sleep", "30"], group="pod1")
    b2 = shims.bundle("c2", ["sh", "-c", "exit 4"], group="pod1")
    b3 = shims.bundle("c3", ["true"], annotations={"io.dockyard.runc.v1.group": "pod1"})
    a1 = shims.start_shim("c1")
    a2 = shims.start_shim("c2")
    a3 = shims.start_shim("c3")
    assert a1 == a2 == a3
    assert not (b2 / "shim.pid").exists()  # c2 joined; no second server
    c = shims.client(a1)
    for cid, b in (("c1", b1), ("c2", b2), ("c3", b3)):
        c.call("Task.Create", {"id": cid, "bundle": str(b)})
        c.call("Task.Start", {"id": cid})
    assert c.call("Task.Wait", {"id": "c2"})["exit_status"] == 4
    assert c.call("Task.Wait", {"id": "c3"})["exit_status"] == 0
    assert c.call("Task.State", {"id": "c1"})["status"] == "running"
    events = shims.events(a1)
    events.read_until(lambda items: len([e for e in items if e["topic"] == "/tasks/exit"]) == 2)
    assert [t for t, _ in events.topics("c2")] == ["/tasks/create", "/tasks/start", "/tasks/exit"]
    c.call("Task.Delete", {"id": "c2"})
    c.call("Task.Delete", {"id": "c3"})
    c.call("Task.Shutdown", {"id": "c2"})  # c1 still runs: ignored
    assert c.call("Task.State", {"id": "c1"})["status"] == "running"
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    c.call("Task.Delete", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})


def test_concurrent_starts_of_one_group_make_one_shim(shims):
    for i in range(4):
        shims.bundle(f"c{i}", ["true"], group="g")
    argv = lambda cid: [SHIM, "-namespace", NAMESPACE, "-address", shims.daemon_address, "-id", cid, "start"]
    procs = [subprocess.Popen(argv(f"c{i}"), cwd=shims.bundles[f"c{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(4)]
    outs = [json.loads(p.communicate(timeout=30)[0]) for p in procs]
    assert len({o["address"] for o in outs}) == 1
    pid_files = [b / "shim.pid" for b in shims.bundles.values() if (b / "shim.pid").exists()]
    assert len(pid_files) == 1
    shims.shim_pids.add(int(pid_files[0].read_text()))
    shims.client(outs[0]["address"][7:]).call("Task.Shutdown", {"id": "c0"})


def test_events_wait_for_the_ack_and_replay_to_a_new_subscriber(shims):
    c, address, b = shims.create("c1", ["sh", "-c", "exit 5"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Wait", {"id": "c1"})
    first = shims.events(address)
    items = first.read_until(lambda items: len(items) == 3)
    first.close()  # "the daemon went away" without acking
    again = shims.events(address).read_until(lambda items: len(items) == 3)
    assert again == items
    c.call("Task.Ack", {"seq": items[1]["seq"]})  # create + start published
    rest = shims.events(address).read_until(lambda items: len(items) == 1)
    assert [e["topic"] for e in rest] == ["/tasks/exit"]
    after = shims.events(address, after=items[2]["seq"])
    with pytest.raises(AssertionError):
        after.read_until(lambda items: len(items) > 0, timeout=0.2)
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed((b / "events.outbox").read_bytes())
    assert [e["topic"] for e in unpacker] == ["/tasks/exit"]  # acked ones are gone from the outbox too
    c.call("Task.Delete", {"id": "c1"})
    after.read_until(lambda items: [e["topic"] for e in items] == ["/tasks/delete"])
    c.call("Task.Shutdown", {"id": "c1"})


def _delete_mode(shims, cid: str) -> dict:
    b = shims.bundles[cid]
    proc = subprocess.run([SHIM, "-namespace", NAMESPACE, "-address", shims.daemon_address, "-id", cid,
                           "-bundle", str(b), "delete"], cwd=b, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_delete_mode_after_the_shim_was_killed(shims):
    rootfs = [{"type": "bind", "source": str(shims.base / "busybox"), "options": ["rbind", "ro"]}]
    c, address, b = shims.create("c1", ["sleep", "30"], mount_rootfs=True, rootfs=rootfs)
    assert str(b / "rootfs") in shims.mounts()
    init_pid = c.call("Task.Start", {"id": "c1"})["pid"]
    shim_pid = int((b / "shim.pid").read_text())
    os.kill(shim_pid, signal.SIGKILL)
    assert wait_gone(shim_pid)
    assert shims.runc_list() == ["c1"]
    result = _delete_mode(shims, "c1")
    assert result["pid"] == init_pid
    assert result["exit_status"] == 137
    assert result["exited_at"] > 0
    assert shims.runc_list() == []
    assert shims.mounts() == []
    assert wait_gone(init_pid)
    assert not os.path.exists(address)  # the dead shim's socket was stale


def test_delete_mode_reports_an_exit_the_dead_shim_had_seen(shims):
    c, _, b = shims.create("c1", ["sh", "-c", "exit 9"])
    c.call("Task.Start", {"id": "c1"})
    waited = c.call("Task.Wait", {"id": "c1"})
    shim_pid = int((b / "shim.pid").read_text())
    os.kill(shim_pid, signal.SIGKILL)
    assert wait_gone(shim_pid)
    result = _delete_mode(shims, "c1")
    assert (result["exit_status"], result["exited_at"]) == (9, waited["exited_at"])
    assert shims.runc_list() == []


def test_delete_mode_of_a_container_that_never_ran(shims):
    shims.bundle("c1", ["true"])
    result = _delete_mode(shims, "c1")
    assert (result["pid"], result["exit_status"]) == (0, 137)


def test_usage_errors_exit_nonzero_with_one_line(shims):
    b = shims.bundle("c1", ["true"])
    for argv, needle in (([SHIM, "-id", "c1", "start"], "namespace"),
                         ([SHIM, "-namespace", "ns", "-id", "c1", "frobnicate"], "unknown action"),
                         ([SHIM, "-namespace", "ns", "-bogus", "start"], "not defined")):
        proc = subprocess.run(argv, cwd=b, capture_output=True, text=True, timeout=30)
        assert proc.returncode != 0
        assert needle in proc.stderr and proc.stderr.count("\n") == 1
        assert proc.stdout == ""


def test_a_stale_socket_is_replaced(shims):
    b = shims.bundle("c1", ["true"])
    address = shims.start_shim("c1")
    shim_pid = int((b / "shim.pid").read_text())
    os.kill(shim_pid, signal.SIGKILL)
    assert wait_gone(shim_pid)
    assert os.path.exists(address)
    (b / "shim.pid").unlink()
    assert shims.start_shim("c1") == address
    new_pid = int((b / "shim.pid").read_text())
    assert new_pid != shim_pid and alive(new_pid)
    shims.client(address).call("Task.Shutdown", {"id": "c1"})


def test_malformed_frames_close_only_that_connection(shims):
    import socket

    b = shims.bundle("c1", ["true"])
    address = shims.start_shim("c1")
    bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bad.connect(address)
    bad.sendall(b"\xc1\xc1\xc1 not msgpack")
    bad.settimeout(5)
    while bad.recv(4096):
        pass  # the shim hangs up on it
    bad.close()
    c = shims.client(address)
    assert c.call("Task.Connect", {"id": "c1"})["version"] == 3
    with pytest.raises(errdefs.InvalidArgument):
        c.call("Task.Ack", {"seq": "x"})
    c.call("Task.Shutdown", {"id": "c1"})
    time.sleep(0)


def test_cancelling_an_event_stream_ends_it_with_canceled(shims):
    from wire import codec

    shims.bundle("c1", ["true"])
    address = shims.start_shim("c1")
    reader = shims.events(address)
    reader.sock.sendall(codec.encode(codec.Cancel(id=1)))
    reader.sock.settimeout(5)
    conn = codec.Connection()
    response = None
    while response is None:
        data = reader.sock.recv(4096)
        assert data, "the shim hung up instead of answering"
        conn.receive_data(data)
        response = next((e for e in conn.events() if isinstance(e, codec.Response)), None)
    assert response.id == 1 and isinstance(response.error, errdefs.Canceled)
    shims.client(address).call("Task.Shutdown", {"id": "c1"})
