"""The shim zygote (``dockyard-shim-runc-v1 ... zygote``): forks shims that behave like ``start``'s."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.shim.conftest import needs_runc
from tests.shim.harness import NAMESPACE, SHIM, alive, wait_gone

pytestmark = needs_runc


class Zygote:
    """One zygote under the test's tmp dir, stopped (and checked gone) at the end."""

    def __init__(self, shims) -> None:
        self.shims = shims
        self.workdir = shims.base / "zygote"
        self.workdir.mkdir()
        self.path = str(shims.state / "s" / "zygote-test")
        out = subprocess.run([SHIM, "-address", shims.daemon_address, "-socket", self.path, "zygote"],
                             cwd=self.workdir, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"address": f"unix://{self.path}"}
        self.pid = int((self.workdir / "zygote.pid").read_text())
        assert self.request(op="ping")["pid"] == self.pid  # this test process becomes its owner

    def ask(self, raw: bytes) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(self.path)
            sock.sendall(raw)
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def request(self, **message) -> dict:
        return self.ask((json.dumps(message) + "\n").encode())

    def start(self, cid: str) -> str:
        answer = self.request(op="start", namespace=NAMESPACE, address=self.shims.daemon_address, id=cid,
                              bundle=str(self.shims.bundles[cid]))
        assert answer.get("version") == 3, answer
        pid_file = self.shims.bundles[cid] / "shim.pid"
        if pid_file.exists():
            self.shims.shim_pids.add(int(pid_file.read_text()))
        return answer["address"][len("unix://"):]

    def stop(self) -> None:
        if alive(self.pid):
            try:
                self.request(op="stop")
            except OSError:
                os.kill(self.pid, signal.SIGKILL)
            assert wait_gone(self.pid, 5)


@pytest.fixture
def zygote(shims):
    z = Zygote(shims)
    try:
        yield z
    finally:
        z.stop()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def _run_to_exit(client, cid: str, bundle) -> int:
    client.call("Task.Create", {"id": cid, "bundle": str(bundle)})
    client.call("Task.Start", {"id": cid})
    status = client.call("Task.Wait", {"id": cid})["exit_status"]
    client.call("Task.Delete", {"id": cid})
    client.call("Task.Shutdown", {"id": cid})
    return status


def test_a_forked_shim_is_detached_like_a_started_one_and_runs_a_container(shims, zygote):
    b = shims.bundle("c1", ["sh", "-c", "exit 3"])
    address = zygote.start("c1")
    shim_pid = int((b / "shim.pid").read_text())
    ppid, sid = int(_stat(shim_pid)[1]), int(_stat(shim_pid)[3])
    assert ppid != zygote.pid and sid not in (shim_pid, zygote.pid, os.getsid(0))  # own session, not a child
    assert os.stat(address).st_mode & 0o777 == 0o600
    with open(f"/proc/{shim_pid}/cmdline", "rb") as fh:
        assert fh.read().startswith(f"dockyard-shim-runc-v1 {NAMESPACE}/c1".encode())
    c = shims.client(address)
    assert c.call("Task.Connect", {"id": "c1"})["shim_pid"] == shim_pid
    assert _run_to_exit(c, "c1", b) == 3
    assert wait_gone(shim_pid)
    assert not os.path.exists(address)
    assert zygote.request(op="ping")["pid"] == zygote.pid  # it reaped its fork and serves on


def test_the_group_rule_holds_through_the_zygote(shims, zygote):
    shims.bundle("g1", ["sleep", "30"], group="pod")
    shims.bundle("g2", ["true"], group="pod")
    a1 = zygote.start("g1")
    assert zygote.start("g2") == a1
    assert not (shims.bundles["g2"] / "shim.pid").exists()  # joined the group's shim
    shims.client(a1).call("Task.Shutdown", {"id": "g1"})


def test_shims_outlive_a_killed_zygote(shims, zygote):
    b = shims.bundle("c1", ["true"])
    address = zygote.start("c1")
    os.kill(zygote.pid, signal.SIGKILL)
    assert wait_gone(zygote.pid)
    assert _run_to_exit(shims.client(address), "c1", b) == 0


def test_hostile_requests_get_an_error_and_the_zygote_serves_on(shims, zygote):
    shims.bundle("c1", ["true"])
    assert "not a JSON line" in zygote.ask(b"\xff\xfe garbage\n")["error"]
    assert "not a JSON object" in zygote.ask(b"[1, 2]\n")["error"]
    assert "unknown op" in zygote.request(op="fork-bomb")["error"]
    assert "longer than" in zygote.ask(b"x" * (70 * 1024))["error"]
    assert "namespace" in zygote.request(op="start", namespace=3, address="a", id="c1", bundle="/")["error"]
    missing = str(shims.base / "nowhere")
    answer = zygote.request(op="start", namespace=NAMESPACE, address=shims.daemon_address, id="c1", bundle=missing)
    assert missing in answer["error"]
    assert zygote.request(op="ping") == {"pid": zygote.pid, "version": answer_version(), "fresh": True}


def answer_version() -> str:
    out = subprocess.run([SHIM, "-v"], capture_output=True, text=True)
    return out.stdout.strip()


def test_a_second_boot_keeps_the_live_zygote_and_stop_removes_its_socket(shims, zygote):
    out = subprocess.run([SHIM, "-address", shims.daemon_address, "-socket", zygote.path, "zygote"],
                         cwd=zygote.workdir, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and int((zygote.workdir / "zygote.pid").read_text()) == zygote.pid
    assert zygote.request(op="stop") == {"stopping": True}
    assert wait_gone(zygote.pid, 5)
    assert not os.path.exists(zygote.path)


def test_the_zygote_exits_when_its_socket_is_removed(shims, zygote):
    os.unlink(zygote.path)
    assert wait_gone(zygote.pid, 5)


def test_zygote_usage_errors(shims):
    out = subprocess.run([SHIM, "-address", shims.daemon_address, "-socket", "relative", "zygote"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "absolute path" in out.stderr


def test_the_zygote_exits_when_its_owner_is_gone_for_a_while(shims, zygote):
    ping = ("import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(b'{\"op\": \"ping\"}\\n'); s.recv(1000)")
    subprocess.run([sys.executable, "-c", ping, zygote.path], check=True, timeout=30)  # a short-lived owner
    assert wait_gone(zygote.pid, 15)
    assert not os.path.exists(zygote.path)
