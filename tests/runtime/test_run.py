"""run, exit codes, IO, env/cwd/user, TTY, signals, runc errors — real runc, shim and daemon."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.runtime.helpers import Events, needs_runc, wait_for
from wire import errdefs

pytestmark = needs_runc


def test_run_rm_exit_code_and_streams(rt):
    r = rt.run("c1", "sh", "-c", "echo out; echo err >&2; exit 3", flags=("--rm",))
    assert (r.returncode, r.stdout, r.stderr) == (3, b"out\n", b"err\n")
    assert rt.daemon.call("Containers.List") == []
    assert rt.daemon.call("Tasks.List") == {"tasks": []}
    assert not rt.bundles() and not rt.runc_list()


def test_run_without_rm_keeps_container_but_deletes_task(rt):
    r = rt.run("keep", "true")
    assert r.returncode == 0
    assert [c["id"] for c in rt.daemon.call("Containers.List")] == ["keep"]
    assert rt.daemon.call("Tasks.List") == {"tasks": []}
    assert rt.cli("containers", "ls").stdout.decode().splitlines()[1].split() == ["keep", "-", "io.dockyard.runc.v1"]
    rt.cli("containers", "rm", "keep")


def test_env_cwd_user_hostname_stdin(rt, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nA=overridden\n")
    r = rt.run("c2", "sh", "-c", 'echo "$A $FROM_FILE"; pwd; id -u; id -g; hostname; cat',
               flags=("--rm", "--env-file", str(env_file), "--env", "A=1", "--cwd", "/tmp",
                      "--user", "65534:65534", "--hostname", "boxy"), input=b"from stdin\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().splitlines() == ["1 yes", "/tmp", "65534", "65534", "boxy", "from stdin"]
    r = rt.run("c3", "id", "-un", flags=("--rm", "--user", "nobody"))
    assert r.stdout == b"nobody\n"


def test_tty(rt):
    r = rt.run("tty1", "sh", "-c", "tty; echo $TERM", flags=("--rm", "-t"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1] == "xterm"


def test_signal_forwarded_by_attached_run(rt):
    proc = subprocess.Popen([
        _dockyard(), "run", "--rm", "--rootfs", str(rt.rootfs), "sig", "sh", "-c",
        "trap 'echo got TERM; exit 42' TERM; echo ready; while true; do sleep 0.05; done"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(rt))
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 42, err
    assert out == b"got TERM\n"


def test_kill_detached_and_exit_status(rt):
    pid = rt.detached("k1", "sleep", "1000")
    assert pid > 0 and rt.status("k1") == "running"
    lines = rt.cli("tasks", "ls").stdout.decode().splitlines()
    assert lines[0].split() == ["TASK", "PID", "STATUS"] and lines[1].split() == ["k1", str(pid), "RUNNING"]
    rt.cli("tasks", "kill", "-s", "SIGKILL", "k1")
    assert rt.cli("tasks", "wait", "k1", check=False).returncode == 137
    assert rt.status("k1") == "stopped" and rt.task("k1")["exit_status"] == 137
    with pytest.raises(errdefs.NotFound):
        rt.daemon.call("Tasks.Kill", {"container_id": "k1", "signal": 9})
    rt.cli("tasks", "rm", "k1")
    rt.cli("containers", "rm", "k1")


def test_rm_refuses_running_task_unless_forced(rt):
    rt.detached("r1", "sleep", "1000")
    r = rt.cli("tasks", "rm", "r1", check=False)
    assert r.returncode == 1 and b"must be stopped" in r.stderr
    with pytest.raises(errdefs.FailedPrecondition):
        rt.daemon.call("Tasks.Delete", {"container_id": "r1"})
    r = rt.cli("containers", "rm", "r1", check=False)
    assert r.returncode == 1 and b"non stopped" in r.stderr
    rt.cli("tasks", "rm", "-f", "r1")
    rt.cli("containers", "rm", "r1")


def test_runc_error_is_surfaced_with_runcs_message(rt):
    r = rt.run("bad", "/does-not-exist", flags=("--rm",))
    assert r.returncode != 0
    assert b"/does-not-exist" in r.stderr and b"no such file or directory" in r.stderr
    assert rt.daemon.call("Containers.List") == []
    assert rt.daemon.call("Tasks.List") == {"tasks": []}


def test_unknown_runtime_is_refused_naming_it(rt):
    rt.cli("containers", "create", "--runtime", "io.nothing.v9", "--rootfs", str(rt.rootfs), "u1", "true")
    r = rt.cli("tasks", "start", "u1", check=False)
    assert r.returncode == 1 and b"io.nothing.v9" in r.stderr and b"not found" in r.stderr
    r = rt.cli("containers", "create", "--runtime", "bad/name", "--rootfs", str(rt.rootfs), "u2", "true")
    with pytest.raises(errdefs.InvalidArgument, match="bad/name"):
        rt.daemon.call("Tasks.Create", {"container_id": "u2"})
    with pytest.raises(errdefs.NotFound, match="container 'ghost'"):
        rt.daemon.call("Tasks.Create", {"container_id": "ghost"})
    rt.cli("containers", "rm", "u1", "u2")


def test_missing_image_and_missing_snapshot(rt):
    r = rt.cli("run", "--rm", "docker.io/library/nothing:here", "m1", "true", check=False)
    assert r.returncode == 1 and b"not found" in r.stderr and b"nothing" in r.stderr
    spec = {"ociVersion": "1.0.2", "process": {"args": ["true"], "cwd": "/"}, "root": {"path": "rootfs"}}
    rt.daemon.call("Containers.Create", {"container": {
        "id": "m2", "runtime": {"name": "io.dockyard.runc.v1"}, "spec": spec,
        "snapshotter": "overlayfs", "snapshot_key": "no-such-snapshot"}})
    r = rt.cli("tasks", "start", "m2", check=False)
    assert r.returncode == 1 and b"no-such-snapshot" in r.stderr and b"not found" in r.stderr
    rt.daemon.call("Containers.Delete", {"id": "m2"})


def test_concurrent_creates_of_one_id_join(rt):
    import threading

    rt.cli("containers", "create", "--rootfs", str(rt.rootfs), "j1", "sleep", "1000")
    results = []

    def create():
        try:
            results.append(rt.daemon.call("Tasks.Create", {"container_id": "j1"})["pid"])
        except errdefs.DockyardError as exc:
            results.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pids = [r for r in results if isinstance(r, int)]
    assert pids and len(set(pids)) == 1, results
    assert all(isinstance(r, int) or isinstance(r, errdefs.AlreadyExists) for r in results), results
    assert len(rt.bundles()) == 1
    rt.cli("tasks", "rm", "-f", "j1")
    rt.cli("containers", "rm", "j1")


def _dockyard() -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).parent / "dockyard")


def _env(rt) -> dict:
    import os

    return {**os.environ, "DOCKYARD_ADDRESS": rt.daemon.address, "DOCKYARD_NAMESPACE": "default"}


def test_cancelled_create_releases_what_it_reserved(rt):
    rt.cli("containers", "create", "--rootfs", str(rt.rootfs), "cx", "sleep", "1000")
    with rt.daemon.client() as c:
        try:  # the deadline lands somewhere inside the create (or, on a fast day, after it)
            c.call("Tasks.Create", {"container_id": "cx"}, timeout=0.03)
        except (errdefs.DeadlineExceeded, errdefs.Canceled):
            pass
    wait_for(lambda: not (rt.bundle_root / "default" / "cx").exists() or _has_task(rt, "cx"), 10, "undo")
    if _has_task(rt, "cx"):  # the create won the race with its deadline: it is a whole task
        rt.cli("tasks", "rm", "-f", "cx")
    wait_for(lambda: not rt.runc_list() and not rt.shims(), 30, "runc and shim to be gone")
    assert rt.daemon.call("Tasks.List") == {"tasks": []}
    # and the id is free again
    rt.cli("tasks", "start", "-d", "cx")
    assert rt.status("cx") == "running"
    rt.cli("tasks", "rm", "-f", "cx")
    rt.cli("containers", "rm", "cx")


def _has_task(rt, cid: str) -> bool:
    try:
        rt.task(cid)
        return True
    except errdefs.NotFound:
        return False
