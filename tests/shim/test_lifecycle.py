"""Create/start/wait/delete of real containers through a real shim and runc."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.shim.conftest import needs_runc
from wire import errdefs

pytestmark = needs_runc

NO_PID_NS = [{"type": t} for t in ("ipc", "uts", "mount")]


def finish(c, cid: str) -> dict:
    """Delete the task and let its shim go."""
    result = c.call("Task.Delete", {"id": cid})
    c.call("Task.Shutdown", {"id": cid})
    return result


@pytest.mark.parametrize(
    ("args", "sig", "expected"),
    [
        (["true"], None, 0),
        (["sh", "-c", "exit 3"], None, 3),
        (["sleep", "30"], signal.SIGKILL, 137),
    ],
)
def test_exit_status(shims, args, sig, expected):
    c, _, _ = shims.create("c1", args)
    pid = c.call("Task.Start", {"id": "c1"})["pid"]
    assert pid > 0
    if sig is not None:
        assert c.call("Task.State", {"id": "c1"})["status"] == "running"
        c.call("Task.Kill", {"id": "c1", "signal": sig})
    waited = c.call("Task.Wait", {"id": "c1"})
    assert waited["exit_status"] == expected
    assert waited["exited_at"] > 0
    state = c.call("Task.State", {"id": "c1"})
    assert (state["status"], state["exit_status"], state["pid"]) == ("stopped", expected, pid)
    deleted = finish(c, "c1")
    assert (deleted["pid"], deleted["exit_status"], deleted["exited_at"]) == (pid, expected, waited["exited_at"])


def test_sigterm_gives_143(shims, monkeypatch):
    # Not pid 1 of its own pid namespace, so SIGTERM's default action applies.
    import tests.shim.bundle as bundle_mod

    spec_of = bundle_mod.minimal_spec

    def without_pid_ns(*a, **kw):
        spec = spec_of(*a, **kw)
        spec["linux"]["namespaces"] = NO_PID_NS
        return spec

    monkeypatch.setattr("tests.shim.harness.minimal_spec", without_pid_ns)
    c, _, _ = shims.create("c1", ["sleep", "30"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Kill", {"id": "c1", "signal": signal.SIGTERM})
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 143
    finish(c, "c1")


def test_stdout_and_stderr_to_a_file(shims, tmp_path):
    log = tmp_path / "logs" / "c1.log"
    uri = f"file://{log}"
    c, _, _ = shims.create("c1", ["sh", "-c", "echo out; echo err >&2"], stdout=uri, stderr=uri)
    c.call("Task.Start", {"id": "c1"})
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0
    assert sorted(log.read_text().split()) == ["err", "out"]
    finish(c, "c1")


def _read_to_eof(fd: int, timeout: float = 10.0) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            return out
        out += chunk
    raise AssertionError(f"no EOF; read {out!r}")


def test_stdout_and_stderr_to_fifos(shims, tmp_path):
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    os.mkfifo(out_path)
    os.mkfifo(err_path)
    out_fd = os.open(out_path, os.O_RDONLY | os.O_NONBLOCK)
    err_fd = os.open(err_path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        c, _, _ = shims.create("c1", ["sh", "-c", "echo to-out; echo to-err >&2"],
                               stdout=str(out_path), stderr=str(err_path))
        c.call("Task.Start", {"id": "c1"})
        assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0
        assert _read_to_eof(out_fd) == b"to-out\n"  # EOF: the container was the last writer
        assert _read_to_eof(err_fd) == b"to-err\n"
        finish(c, "c1")
    finally:
        os.close(out_fd)
        os.close(err_fd)


def test_stdin_fifo_eof_reaches_the_process(shims, tmp_path):
    stdin_path, out = tmp_path / "in", tmp_path / "out.log"
    os.mkfifo(stdin_path)
    c, _, _ = shims.create("c1", ["cat"], stdin=str(stdin_path), stdout=f"file://{out}", stderr=f"file://{out}")
    c.call("Task.Start", {"id": "c1"})
    with open(stdin_path, "wb") as w:  # the shim holds the read end since Create
        w.write(b"ping\n")
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0
    assert out.read_text() == "ping\n"
    finish(c, "c1")


def test_close_io_closes_stdin(shims, tmp_path):
    stdin_path, out = tmp_path / "in", tmp_path / "out.log"
    os.mkfifo(stdin_path)
    c, _, _ = shims.create("c1", ["cat"], stdin=str(stdin_path), stdout=f"file://{out}")
    c.call("Task.Start", {"id": "c1"})
    w = os.open(stdin_path, os.O_WRONLY)
    try:
        os.write(w, b"kept open\n")
        time.sleep(0.05)
        assert c.call("Task.State", {"id": "c1"})["status"] == "running"
        c.call("Task.CloseIO", {"id": "c1", "stdin": True})
        assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0
    finally:
        os.close(w)
    assert out.read_text() == "kept open\n"
    finish(c, "c1")


def test_terminal_round_trip_and_resize(shims, tmp_path):
    stdin_path, out_path = tmp_path / "in", tmp_path / "out"
    os.mkfifo(stdin_path)
    os.mkfifo(out_path)
    out_fd = os.open(out_path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        c, _, _ = shims.create("c1", ["sh", "-c", "tty; read line; stty size; echo got:$line"], terminal=True,
                               stdin=str(stdin_path), stdout=str(out_path))
        c.call("Task.Start", {"id": "c1"})
        c.call("Task.ResizePty", {"id": "c1", "width": 100, "height": 40})
        with open(stdin_path, "wb") as w:
            w.write(b"hello\n")
        assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0
        text = _read_to_eof(out_fd).decode()
        assert "/dev/pts/0" in text
        assert "40 100" in text
        assert "got:hello" in text
        assert "\r\n" in text  # it went through a real terminal
        finish(c, "c1")
    finally:
        os.close(out_fd)


def test_kill_of_an_exited_process_is_not_found(shims):
    c, _, _ = shims.create("c1", ["true"])
    c.call("Task.Start", {"id": "c1"})
    c.call("Task.Wait", {"id": "c1"})
    with pytest.raises(errdefs.NotFound, match="already finished"):
        c.call("Task.Kill", {"id": "c1", "signal": 9})
    finish(c, "c1")


def test_illegal_steps_are_refused(shims):
    c, _, _ = shims.create("c1", ["sleep", "30"])
    with pytest.raises(errdefs.FailedPrecondition):
        c.call("Task.Resume", {"id": "c1"})
    c.call("Task.Start", {"id": "c1"})
    with pytest.raises(errdefs.FailedPrecondition):
        c.call("Task.Start", {"id": "c1"})
    with pytest.raises(errdefs.FailedPrecondition):
        c.call("Task.Delete", {"id": "c1"})
    with pytest.raises(errdefs.AlreadyExists):
        c.call("Task.Create", {"id": "c1", "bundle": str(shims.bundles["c1"])})
    with pytest.raises(errdefs.NotFound):
        c.call("Task.State", {"id": "nope"})
    with pytest.raises(errdefs.NotImplemented_):
        c.call("Task.Checkpoint", {"id": "c1"})
    c.call("Task.Shutdown", {"id": "c1"})  # ignored: a container remains
    assert c.call("Task.State", {"id": "c1"})["status"] == "running"
    c.call("Task.Kill", {"id": "c1", "signal": 9})
    c.call("Task.Wait", {"id": "c1"})
    finish(c, "c1")


def test_delete_of_a_created_task(shims):
    c, _, _ = shims.create("c1", ["sleep", "30"])
    pid = c.call("Task.State", {"id": "c1"})["pid"]
    deleted = finish(c, "c1")
    assert deleted["pid"] == pid
    assert deleted["exit_status"] == 137


def test_runc_error_is_surfaced_with_runcs_message(shims):
    b = shims.bundle("c1", ["no-such-binary"])
    c = shims.client(shims.start_shim("c1"))
    with pytest.raises(errdefs.DockyardError, match='exec: "no-such-binary": executable file not found'):
        c.call("Task.Create", {"id": "c1", "bundle": str(b)})
    with pytest.raises(errdefs.NotFound):  # nothing half-made stays behind
        c.call("Task.State", {"id": "c1"})
    assert shims.runc_list() == []
    c.call("Task.Shutdown", {"id": "c1"})


def test_missing_bundle_and_bad_ids_are_invalid(shims):
    b = shims.bundle("c1", ["true"])
    c = shims.client(shims.start_shim("c1"))
    with pytest.raises(errdefs.InvalidArgument):
        c.call("Task.Create", {"id": "c1", "bundle": str(b / "nope")})
    with pytest.raises(errdefs.InvalidArgument):
        c.call("Task.Create", {"id": "../x", "bundle": str(b)})
    with pytest.raises(errdefs.NotFound):
        c.call("Task.Create", {"id": "c1", "bundle": str(b), "stdout": str(b / "no-fifo")})
    assert shims.runc_list() == []
    c.call("Task.Shutdown", {"id": "c1"})


def test_a_failed_create_unmounts_the_rootfs_it_mounted(shims):
    rootfs = [{"type": "bind", "source": str(shims.base / "busybox"), "options": ["rbind", "ro"]}]
    b = shims.bundle("c1", ["no-such-binary"], mount_rootfs=True)
    c = shims.client(shims.start_shim("c1"))
    with pytest.raises(errdefs.DockyardError, match="executable file not found"):
        c.call("Task.Create", {"id": "c1", "bundle": str(b), "rootfs": rootfs})
    assert shims.mounts() == []
    assert shims.runc_list() == []
    c.call("Task.Shutdown", {"id": "c1"})


def test_rootfs_mounted_for_the_task_and_unmounted_at_delete(shims):
    rootfs = [{"type": "bind", "source": str(shims.base / "busybox"), "options": ["rbind", "ro"]}]
    c, _, b = shims.create("c1", ["sh", "-c", "touch /x 2>/dev/null && exit 1; ls /bin/busybox"],
                           mount_rootfs=True, rootfs=rootfs)
    assert shims.mounts() == [str(b / "rootfs")]
    c.call("Task.Start", {"id": "c1"})
    assert c.call("Task.Wait", {"id": "c1"})["exit_status"] == 0  # read-only bind: the write failed
    finish(c, "c1")
    assert shims.mounts() == []


def test_a_runc_call_past_its_deadline_is_killed(shims, tmp_path):
    import json as _json

    fake = tmp_path / "slow-runc"
    fake.write_text('#!/bin/sh\ncase "$*" in *" create "*) exec sleep 30;; esac\nexit 0\n')
    fake.chmod(0o755)
    b = shims.bundle("c1", ["true"])
    options = _json.loads((b / "options.json").read_text())
    (b / "options.json").write_text(_json.dumps({**options, "binary_name": str(fake)}))
    c = shims.client(shims.start_shim("c1"))
    started = time.monotonic()
    with pytest.raises(errdefs.DeadlineExceeded, match="runc create c1"):
        c.call("Task.Create", {"id": "c1", "bundle": str(b)}, timeout=0.5)
    assert time.monotonic() - started < 5
    with pytest.raises(errdefs.NotFound, match="runc binary"):
        c.call("Task.Create", {"id": "c1", "bundle": str(b), "options": {"binary_name": "no-such-runc"}})
    c.call("Task.Shutdown", {"id": "c1"})
