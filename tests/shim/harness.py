"""Drive real dockyard-shim-runc-v1 processes from tests (sync, wire.client)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.shim.bundle import busybox_rootfs, make_bundle, minimal_spec
from tests.support.processes import alive  # noqa: F401  (the shim tests use it from here)
from wire import codec
from wire.client import Client

SHIM = str(Path(sys.executable).parent / "dockyard-shim-runc-v1")
NAMESPACE = "shimtest"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class EventReader:
    """A ``Task.Events`` subscription read with deadlines (the sync client's streams have none)."""

    def __init__(self, address: str, after: int = 0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(address)
        self.codec = codec.Connection()
        self.sock.sendall(codec.encode(codec.Request(id=1, method="Task.Events", params={"after": after},
                                                     meta=codec.Metadata(namespace=NAMESPACE))))
        self.items: list[dict] = []

    def read_until(self, predicate, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while not predicate(self.items):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise AssertionError(f"events never matched; got {[e['topic'] for e in self.items]}")
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("event stream closed")
            self.codec.receive_data(data)
            for event in self.codec.events():
                if isinstance(event, codec.StreamItem):
                    self.items.append(event.item)
        return self.items

    def topics(self, cid: str | None = None) -> list[tuple[str, str]]:
        """(topic, process id) pairs, optionally only those of container ``cid``."""
        out = []
        for env in self.items:
            event = env["event"]
            if cid is not None and event.get("container_id") != cid:
                continue
            out.append((env["topic"], event.get("id") or event.get("exec_id") or event.get("container_id")))
        return out

    def close(self) -> None:
        self.sock.close()


class Shims:
    """Bundles, shim starts and clients under one tmp dir; ``cleanup()`` removes whatever is left."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.state = base / "state"
        self.runc_root = base / "runc"
        self.daemon_address = str(self.state / "dockyard.sock")
        self.rootfs_src = base / "busybox"
        self.bundles: dict[str, Path] = {}
        self.shim_pids: set[int] = set()
        self.clients: list[Client] = []
        self.readers: list[EventReader] = []

    def bundle(self, cid: str, args: list[str], *, group: str | None = None, mount_rootfs: bool = False,
               **spec_kw) -> Path:
        src = None
        if mount_rootfs:
            if not self.rootfs_src.exists():
                busybox_rootfs(self.rootfs_src)
            src = self.rootfs_src
        b = make_bundle(self.state, NAMESPACE, cid, minimal_spec(args, **spec_kw), rootfs_src=src,
                        runc_root=self.runc_root, group=group)
        self.bundles[cid] = b
        return b

    def start_shim(self, cid: str, *, via_shell: bool = False) -> str:
        argv = [SHIM, "-namespace", NAMESPACE, "-address", self.daemon_address, "-id", cid, "start"]
        if via_shell:  # a parent that exits right after the start
            argv = ["sh", "-c", " ".join(argv)]
        proc = subprocess.run(argv, cwd=self.bundles[cid], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        address = json.loads(proc.stdout)["address"]
        assert address.startswith("unix://")
        pid_file = self.bundles[cid] / "shim.pid"
        if pid_file.exists():
            self.shim_pids.add(int(pid_file.read_text()))
        return address[len("unix://"):]

    def client(self, address: str) -> Client:
        c = Client(address, namespace=NAMESPACE, timeout=30)
        self.clients.append(c)
        return c

    def events(self, address: str, after: int = 0) -> EventReader:
        r = EventReader(address, after)
        self.readers.append(r)
        return r

    def create(self, cid: str, args: list[str], **kw) -> tuple[Client, str, Path]:
        """bundle + shim start + Task.Create; returns (client, shim address, bundle)."""
        create_kw = {k: kw.pop(k) for k in ("stdin", "stdout", "stderr", "rootfs") if k in kw}
        b = self.bundle(cid, args, **kw)
        address = self.start_shim(cid)
        c = self.client(address)
        params = {"id": cid, "bundle": str(b), "terminal": bool(kw.get("terminal")), **create_kw}
        c.call("Task.Create", params)
        return c, address, b

    def runc_list(self) -> list[str]:
        if not self.runc_root.exists():
            return []
        out = subprocess.run(["runc", "--root", str(self.runc_root), "list", "-q"], capture_output=True, text=True)
        return out.stdout.split()

    def mounts(self) -> list[str]:
        base = os.path.realpath(self.base)
        with open("/proc/self/mountinfo") as fh:
            return [line.split()[4] for line in fh if line.split()[4].startswith(base)]

    def cleanup(self) -> list[str]:
        """Tear everything down; returns what was still there (a test should leave nothing)."""
        for c in self.clients:
            c.close()
        for r in self.readers:
            r.close()
        left = []
        for cid in self.runc_list():
            left.append(f"runc container {cid}")
            subprocess.run(["runc", "--root", str(self.runc_root), "delete", "--force", cid], capture_output=True)
        for pid in self.shim_pids:
            if not wait_gone(pid, 3.0):
                left.append(f"shim {pid}")
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid)
        for point in sorted(self.mounts(), key=len, reverse=True):
            left.append(f"mount {point}")
            subprocess.run(["umount", "-l", point], capture_output=True)
        return left
