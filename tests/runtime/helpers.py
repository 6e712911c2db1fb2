"""Helpers for task tests against a real daemon, the real shim and runc."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.daemon import Daemon
from tests.support.images import busybox_layer
from wire import errdefs

needs_runc = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and /bin/busybox",
)


def busybox_rootfs(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(busybox_layer())) as tar:
        tar.extractall(path)
    return path


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Events:
    """A subscription in a thread: collects envelopes until closed."""

    def __init__(self, daemon: Daemon, filters: list[str] | None = None, since: int | None = None) -> None:
        self.items: list[dict] = []
        self._client = daemon.client(namespace=None)
        params = {"filters": filters or ['topic~="/tasks/"']}
        if since is not None:
            params["since"] = since
        self._stream = self._client.stream("Events.Subscribe", params)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for envelope in self._stream:
                self.items.append(envelope)
        except (errdefs.DockyardError, OSError, ValueError):
            pass

    def topics(self, cid: str | None = None) -> list[tuple[str, str]]:
        out = []
        for e in list(self.items):
            ev = e["event"]
            if cid is None or ev.get("container_id") == cid:
                out.append((e["topic"], ev.get("id") or ev.get("exec_id") or ev.get("container_id", "")))
        return out

    def wait(self, predicate, timeout: float = 10.0):
        return wait_for(lambda: predicate(self), timeout, "events")

    def close(self) -> None:
        self._client.close()


class Runtime:
    def __init__(self, daemon: Daemon, rootfs: Path) -> None:
        self.daemon = daemon
        self.rootfs = rootfs

    @property
    def bundle_root(self) -> Path:
        return self.daemon.state / "io.dockyard.runtime.v1.task"

    def bundles(self) -> list[Path]:
        """Task bundles (not the zygote's work dir nor the event bookkeeping)."""
        if not self.bundle_root.exists():
            return []
        return [p for p in self.bundle_root.glob("*/*") if not p.parent.name.startswith(".")]

    def runc_root(self, ns: str = "default") -> Path:
        return self.daemon.state / "runc" / ns

    def cli(self, *args, **kw) -> subprocess.CompletedProcess:
        return self.daemon.cli(*args, **kw)

    def run(self, cid: str, *cmd: str, flags: tuple[str, ...] = (), **kw) -> subprocess.CompletedProcess:
        return self.cli("run", *flags, "--rootfs", str(self.rootfs), cid, *cmd, check=False, **kw)

    def detached(self, cid: str, *cmd: str, flags: tuple[str, ...] = ()) -> int:
        self.cli("run", "-d", *flags, "--rootfs", str(self.rootfs), cid, *cmd)
        return self.task(cid)["pid"]

    def task(self, cid: str) -> dict:
        return self.daemon.call("Tasks.Get", {"container_id": cid})["process"]

    def status(self, cid: str) -> str:
        return self.task(cid)["status"]

    def shim_pid(self, cid: str) -> int:
        return int((self.bundle_root / "default" / cid / "shim.pid").read_text().strip())

    def runc_list(self) -> list[str]:
        root = self.daemon.state / "runc"
        found = []
        if root.exists():
            for ns in root.iterdir():
                out = subprocess.run(["runc", "--root", str(ns), "list", "-q"], capture_output=True, text=True)
                found += [f"{ns.name}/{line}" for line in out.stdout.split()]
        return found

    def mounts(self) -> list[str]:
        base = str(self.daemon.base)
        with open("/proc/self/mountinfo") as fh:
            return [line.split()[4] for line in fh if line.split()[4].startswith(base)]

    def shims(self) -> list[str]:
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
        base = str(self.daemon.base)
        found = []
        for line in ps.splitlines():
            if "dockyard-shim" not in line or " zygote " in line:  # the zygote exits with the daemon
                continue
            pid = line.split()[0]
            try:  # the title may be cut short: recognize our shims by the files they hold open
                fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:
                continue
            if any(f.startswith(base) and "/.zygote/" not in f for f in fds):
                found.append(line)
        return found

    def _remove_all(self) -> None:
        for ns_info in self.daemon.call("Namespaces.List"):
            with self.daemon.client(namespace=ns_info["name"]) as c:
                for t in c.call("Tasks.List")["tasks"]:
                    cid = t["container_id"]
                    for key in ("stdin", "stdout", "stderr"):  # as `dockyard tasks rm` would
                        if (t.get(key) or "").startswith(str(self.daemon.state / "fifo")):
                            shutil.rmtree(os.path.dirname(t[key]), ignore_errors=True)
                    try:
                        c.call("Tasks.Kill", {"container_id": cid, "signal": 9, "all": True})
                    except errdefs.DockyardError:
                        pass
                    try:
                        c.call("Tasks.Wait", {"container_id": cid}, timeout=10)
                        c.call("Tasks.Delete", {"container_id": cid})
                    except errdefs.DockyardError:
                        pass
                for record in c.call("Containers.List"):
                    c.call("Containers.Delete", {"id": record["id"]})
                    if record.get("snapshot_key"):
                        try:
                            c.call("Snapshots.Remove", {"snapshotter": record["snapshotter"],
                                                        "key": record["snapshot_key"]})
                        except errdefs.DockyardError:
                            pass

    def _state_left(self) -> list[str]:
        left = []
        left += [f"bundle {p}" for p in self.bundles()]
        netns_dir = self.daemon.state / "netns"
        if netns_dir.exists():
            left += [f"netns {p}" for p in netns_dir.iterdir()]
        fifo_dir = self.daemon.state / "fifo"
        if fifo_dir.exists():
            left += [f"fifo {p}" for p in fifo_dir.iterdir()]
        return left

    def zygotes(self) -> list[str]:
        """The daemon's shim zygotes still running ("<pid> <title>"; read from /proc: ps may cut titles)."""
        marker = f" zygote {self.daemon.address}".encode()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    title = fh.read().replace(b"\0", b" ").strip()
            except OSError:
                continue
            if title.startswith(b"dockyard-shim") and marker in title:
                found.append(f"{pid} {title.decode(errors='replace')}")
        return found

    def _stray_zygotes(self) -> list[str]:
        """After a clean stop no zygote may be left; any found is reported and killed."""
        try:
            wait_for(lambda: not self.zygotes(), 5, "the shim zygote to exit")
            return []
        except AssertionError:
            left = self.zygotes()
            for line in left:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            return [f"zygote {z}" for z in left]

    def reset(self) -> list[str]:
        """Between tests on a shared daemon: remove every task and container; report leftovers."""
        if self.daemon.proc is None:
            self.daemon.start()
        self._remove_all()
        left = [f"runc {x}" for x in self.runc_list()] + self._state_left()
        try:
            wait_for(lambda: not self.shims(), 5, "shims to exit")
        except AssertionError:
            left += [f"shim {s}" for s in self.shims()]
        return left

    def cleanup(self) -> list[str]:
        """Kill and delete every task and container, stop the daemon; report anything left behind."""
        if self.daemon.proc is None:
            self.daemon.start()
        self._remove_all()
        left = [f"runc {x}" for x in self.runc_list()]
        self.daemon.stop()
        left += self._stray_zygotes()
        try:
            wait_for(lambda: not self.shims(), 5, "shims to exit")
        except AssertionError:
            left += [f"shim {s}" for s in self.shims()]
            for line in self.shims():
                os.kill(int(line.split()[0]), signal.SIGKILL)
        left += [f"mount {m}" for m in self.mounts()]
        return left + self._state_left()

    def sequence_reserved(self) -> int:
        """Events published by the next daemon start get numbers above this."""
        path = next(self.daemon.root.glob("io.dockyard.event.v1.*/sequence"))
        return int(path.read_text().strip())

    def network(self, cid: str) -> dict:
        return json.loads((self.bundle_root / "default" / cid / "network.json").read_text())
