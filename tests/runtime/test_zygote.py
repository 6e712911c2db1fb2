"""The daemon's shim zygote: shims forked by it, its death, daemon restarts, its stop, the fallback."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

from tests.runtime.helpers import Runtime, needs_runc, wait_for
from tests.support.processes import alive

pytestmark = needs_runc


def zygote_pid(rt) -> int:
    """The pid of the daemon's one zygote (started by the first create)."""
    lines = wait_for(rt.zygotes, 20, "the daemon's shim zygote")
    assert len(lines) == 1, lines
    return int(lines[0].split()[0])


def shared_dirty_kib(pid: int) -> int:
    """Pages a process shares dirty with another: a forked child shares its zygote's, a fresh process none."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Shared_Dirty:"):
                return int(line.split()[1])
    return 0


def test_a_shim_forked_by_the_zygote_runs_a_container(rt):
    r = rt.run("zr", "echo", "forked", flags=("--rm",))
    assert (r.returncode, r.stdout) == (0, b"forked\n"), r.stderr
    zygote = zygote_pid(rt)
    rt.detached("zd", "sleep", "1000")
    shim = rt.shim_pid("zd")
    assert shared_dirty_kib(shim) > 0  # it shares the zygote's pages: it was forked, not started
    with open(f"/proc/{shim}/stat") as fh:
        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
    assert ppid != zygote and ppid != rt.daemon.proc.pid  # nobody's child
    rt.cli("tasks", "rm", "-f", "zd")
    rt.cli("containers", "rm", "zd")


def test_zygote_killed_running_containers_unaffected_next_create_works(rt):
    pid = rt.detached("zk1", "sleep", "1000")
    old = zygote_pid(rt)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not alive(old), 5, "the zygote to die")
    assert rt.status("zk1") == "running" and alive(pid)
    r = rt.run("zk2", "echo", "still", flags=("--rm",))
    assert (r.returncode, r.stdout) == (0, b"still\n"), r.stderr
    assert zygote_pid(rt) != old  # a new one took its place
    rt.cli("tasks", "rm", "-f", "zk1")
    rt.cli("containers", "rm", "zk1")


def test_daemon_kill9_restart_reuses_the_zygote(fresh_rt):
    rt = fresh_rt
    pid = rt.detached("zr1", "sleep", "1000")
    zygote = zygote_pid(rt)
    rt.daemon.kill9()
    assert alive(zygote) and alive(pid)
    rt.daemon.start()
    assert rt.status("zr1") == "running"
    r = rt.run("zr2", "echo", "again", flags=("--rm",))
    assert (r.returncode, r.stdout) == (0, b"again\n"), r.stderr
    assert zygote_pid(rt) == zygote  # same code on disk: adopted, not replaced
    rt.cli("tasks", "rm", "-f", "zr1")
    rt.cli("containers", "rm", "zr1")


class StaleZygote:
    """A fake zygote on the daemon's zygote socket that says its code is old; records what it is asked."""

    def __init__(self, path: str) -> None:
        self.ops: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(20)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        path = self.sock.getsockname()
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                op = json.loads(conn.makefile().readline()).get("op")
                self.ops.append(op)
                conn.sendall(json.dumps({"pid": 0, "version": "old", "fresh": False} if op == "ping"
                                        else {"stopping": True}).encode() + b"\n")
            if op == "stop":
                os.unlink(path)
                self.sock.close()
                return


def test_a_stale_zygote_is_stopped_and_replaced_at_start(fresh_rt):
    rt = fresh_rt
    r = rt.run("zs0", "true", flags=("--rm",))
    assert r.returncode == 0, r.stderr
    zygote_pid(rt)
    (key,) = [p.name for p in (rt.bundle_root / ".zygote").iterdir()]  # its work dir names its socket
    (path,) = [p for p in (rt.daemon.state / "s" / f"zygote-{key}", Path("/run/dockyard-shim") / f"zygote-{key}")
               if p.exists()]
    rt.daemon.stop()
    wait_for(lambda: not rt.zygotes(), 5, "the zygote to stop with the daemon")
    assert not path.exists()
    fake = StaleZygote(str(path))
    rt.daemon.start()
    r = rt.run("zs", "echo", "new", flags=("--rm",))
    assert (r.returncode, r.stdout) == (0, b"new\n"), r.stderr
    assert fake.ops == ["ping", "stop"]
    zygote_pid(rt)  # a real one serves in its place


def test_no_zygote_left_after_the_daemon_stops(fresh_rt):
    rt = fresh_rt
    rt.detached("zl", "sleep", "1000")
    zygote = zygote_pid(rt)
    rt.daemon.stop()
    wait_for(lambda: not alive(zygote), 5, "the zygote to exit")
    rt.daemon.start()
    assert rt.status("zl") == "running"  # the shim never depended on the zygote
    rt.cli("tasks", "rm", "-f", "zl")
    rt.cli("containers", "rm", "zl")


def test_without_the_zygote_shims_are_started_and_no_zygote_runs(make_daemon, rootfs):
    rt = Runtime(make_daemon("nozygote", config={"plugins": {"io.dockyard.runtime.v1.task": {
        "shim_zygote": False}}}), rootfs)
    rt.daemon.start()
    try:
        r = rt.run("nz", "echo", "started", flags=("--rm",))
        assert (r.returncode, r.stdout) == (0, b"started\n"), r.stderr
        rt.detached("nzd", "sleep", "1000")
        assert shared_dirty_kib(rt.shim_pid("nzd")) == 0  # a fresh process
        assert not rt.zygotes()
    finally:
        left = rt.cleanup()
        assert not left, f"left behind: {left}"


def test_a_zygote_nobody_adopts_exits_after_its_daemon_died(fresh_rt):
    rt = fresh_rt
    pid = rt.detached("zo", "sleep", "1000")
    zygote = zygote_pid(rt)
    rt.daemon.kill9()
    wait_for(lambda: not alive(zygote), 15, "the orphaned zygote to exit")
    assert alive(pid)
    rt.daemon.start()
    assert rt.status("zo") == "running"
    rt.cli("tasks", "rm", "-f", "zo")
    rt.cli("containers", "rm", "zo")


def test_a_shim_binary_whose_zygote_fails_is_started_instead(rt, tmp_path):
    shim = Path(sys.executable).parent / "dockyard-shim-runc-v1"
    wrapper = tmp_path / "dockyard-shim-nozygote"
    wrapper.write_text(f"#!/bin/sh\ncase \" $* \" in *' zygote '*) echo 'no zygote here' >&2; exit 1;; esac\n"
                       f"exec {shim} \"$@\"\n")
    wrapper.chmod(0o755)
    for cid in ("nf1", "nf2"):  # the second does not try the broken zygote again
        r = rt.run(cid, "echo", "started", flags=("--rm", "--runtime", str(wrapper)))
        assert (r.returncode, r.stdout) == (0, b"started\n"), r.stderr
    assert "no zygote here" in rt.daemon.log()
