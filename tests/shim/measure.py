"""Shim footprint: start latency, import cost, RSS/PSS with 1 and 10 containers in one group.

    .venv/bin/python -m tests.shim.measure        (root, runc, /bin/busybox)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.shim.bundle import make_bundle, minimal_spec
from tests.shim.harness import SHIM, wait_gone
from wire.client import Client


def rollup(pid: int) -> dict[str, int]:
    """Rss/Pss/... in KiB from /proc/<pid>/smaps_rollup."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def start(bundle: Path, cid: str, address: str) -> str:
    out = subprocess.run([SHIM, "-namespace", "m", "-address", address, "-id", cid, "start"], cwd=bundle,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["address"][len("unix://"):]


def median_ms(argv: list[str], runs: int = 15, **kw) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, **kw)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="shim-measure-"))
    state, runc_root, daemon = base / "state", base / "runc", str(base / "d.sock")
    py = sys.executable
    bare = median_ms([py, "-c", "pass"])
    imports = median_ms([py, "-c", "import shim.main, shim.server, shim.service"], cwd="/work/main")
    print(f"python -c pass: {bare:.1f} ms; + shim imports: {imports:.1f} ms ({imports - bare:.1f} ms for the shim)")
    for n in (1, 10):
        bundles = [make_bundle(state, "m", f"n{n}c{i}", minimal_spec(["sleep", "600"]), runc_root=runc_root,
                               group=f"group{n}") for i in range(n)]
        t = time.perf_counter()
        address = start(bundles[0], f"n{n}c0", daemon)
        first_start = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        for i in range(1, n):
            start(bundles[i], f"n{n}c{i}", daemon)
        join = (time.perf_counter() - t) * 1000 / max(1, n - 1)
        c = Client(address, namespace="m", timeout=30)
        for i, b in enumerate(bundles):
            c.call("Task.Create", {"id": f"n{n}c{i}", "bundle": str(b)})
            c.call("Task.Start", {"id": f"n{n}c{i}"})
        c.call("Task.Ack", {"seq": 10**9})
        shim_pid = c.call("Task.Connect", {"id": f"n{n}c0"})["shim_pid"]
        mem = rollup(shim_pid)
        print(f"{n:2d} container(s): first start {first_start:.0f} ms" + (f", join {join:.0f} ms" if n > 1 else "")
              + f"; shim RSS {mem['Rss'] / 1024:.1f} MiB, PSS {mem['Pss'] / 1024:.1f} MiB"
              f" = {mem['Pss'] / 1024 / n:.2f} MiB PSS per container")
        for i in range(n):
            c.call("Task.Kill", {"id": f"n{n}c{i}", "signal": 9})
            c.call("Task.Wait", {"id": f"n{n}c{i}"})
            c.call("Task.Delete", {"id": f"n{n}c{i}"})
        c.call("Task.Shutdown", {"id": "x"})
        c.close()
        wait_gone(shim_pid)
    subprocess.run(["rm", "-rf", str(base)])


if __name__ == "__main__":
    main()
