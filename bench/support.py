"""Shared bench plumbing: medians and ratios, a private dockyardd, a private containerd.

The machine is shared and noisy: every figure is the median of several runs, and
dockyard is always compared with containerd measured in the same run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Daemon  # noqa: E402  (one way to start a private daemon)

BIN = Path(sys.executable).parent
PACKAGES = ("actors", "cli", "oci", "shim", "wire")


def compile_bytecode() -> None:
    """Measure dockyard as installed: with its bytecode compiled, as ``pip install`` leaves it.

    An editable checkout under PYTHONDONTWRITEBYTECODE=1 (set on this machine) would
    otherwise compile every module of the CLI, shim and daemon from source at each
    start, which no installed copy does.
    """
    import compileall

    for package in PACKAGES:
        compileall.compile_dir(str(ROOT / package), quiet=1)


compile_bytecode()


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


def report(name: str, dockyard: float | None, containerd: float | None, unit: str, *, lower_is_better=True) -> None:
    """One line: both medians and the ratio dockyard/containerd."""
    def fmt(v):
        return "n/a" if v is None else f"{v:.4g} {unit}"

    ratio = ""
    if dockyard is not None and containerd:
        r = dockyard / containerd
        verdict = ("ok" if r <= 1 else "slower") if lower_is_better else ("ok" if r >= 1 else "lower")
        ratio = f"ratio {r:.2f}x ({verdict})"
    print(f"{name:<48} dockyard {fmt(dockyard):>16}   containerd {fmt(containerd):>16}   {ratio}", flush=True)


@contextlib.contextmanager
def dockyard_daemon(**config) -> Iterator[Daemon]:
    base = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    d = Daemon(base / "d", config=config or None).start()
    try:
        yield d
    finally:
        with contextlib.suppress(Exception):
            d.stop()
        shutil.rmtree(base, ignore_errors=True)


class Containerd:
    """A containerd on a private root/state/socket, or None when it is not installed."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.address = str(base / "containerd.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Containerd":
        cfg = self.base / "config.toml"
        cfg.write_text(
            "version = 2\n"
            f'root = "{self.base}/root"\nstate = "{self.base}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.address}"\n'
            f'[ttrpc]\n  address = "{self.address}.ttrpc"\n'
            f'[debug]\n  address = "{self.base}/debug.sock"\n'
            '[metrics]\n  address = ""\n'
        )
        log = open(self.base / "containerd.log", "ab")
        self.proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ctr("version", check=False).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("containerd did not start: " + (self.base / "containerd.log").read_text()[-2000:])

    def ctr(self, *args: str, check: bool = True, input: bytes | None = None, namespace: str = "default"):
        return subprocess.run(["ctr", "--address", self.address, "--namespace", namespace, *args],
                              capture_output=True, check=check, input=input)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        subprocess.run(["umount", "-R", str(self.base / "state")], capture_output=True)
        subprocess.run(["umount", "-R", str(self.base / "root")], capture_output=True)


@contextlib.contextmanager
def containerd() -> Iterator[Containerd | None]:
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        print("(containerd/ctr not installed: containerd columns are n/a; `make bench-deps` installs them)")
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="containerd-bench-"))
    c = Containerd(base)
    try:
        yield c.start()
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def pss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for {pid}")


def env_for(address: str) -> dict:
    return {**os.environ, "DOCKYARD_ADDRESS": address}
