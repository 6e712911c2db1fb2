"""Benchmark: prepare + commit of an empty layer through the daemon, next to containerd.

    .venv/bin/python bench/snapshots.py [--ops 100] [--cli-ops 20] [--runs 3]

One op = Prepare(key, parent=previous layer) + Commit(layer, key): a chain, as
an unpack builds it, on the overlayfs snapshotter.  Three figures, each the
median of ``--runs``:

* CLI per op: ``dockyard snapshots prepare/commit`` vs ``ctr snapshots
  prepare/commit`` (both pay a process start per call: what a script sees);
* CLI per op, start-up removed: the same, less two ``snapshots info`` calls (one
  cheap RPC plus a process start each), an estimate of the daemon's own rate
  on both sides;
* RPC: the same two calls from one connected msgpack-RPC client (containerd has
  no Python client here, so this one has no containerd column).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.support import BIN, containerd, dockyard_daemon, env_for, report  # noqa: E402


def rpc_rate(daemon, ops: int, run: int) -> float:
    lease = f"bench-{run}"
    with daemon.client(lease=lease) as c:
        c.call("Leases.Create", {"id": lease})
        parent = ""
        start = time.perf_counter()
        for i in range(ops):
            key, name = f"r{run}-extract-{i}", f"r{run}-layer-{i}"
            c.call("Snapshots.Prepare", {"key": key, "parent": parent})
            c.call("Snapshots.Commit", {"name": name, "key": key})
            parent = name
        return ops / (time.perf_counter() - start)


def cli_rate(run_cli, ops: int, prefix: str) -> float:
    parent = []
    start = time.perf_counter()
    for i in range(ops):
        key, name = f"{prefix}-extract-{i}", f"{prefix}-layer-{i}"
        run_cli("snapshots", "prepare", key, *parent)
        run_cli("snapshots", "commit", name, key)
        parent = [name]
    return ops / (time.perf_counter() - start)


def call_seconds(run_cli, calls: int) -> float:
    """Median seconds of one cheap CLI call (``snapshots info`` of an existing key)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run_cli("snapshots", "info", "c0-layer-0")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def without_startup(rate: float, call: float) -> float | None:
    """ops/s once two calls' start-up (``call`` seconds each) is taken out of every op."""
    left = 1 / rate - 2 * call
    return 1 / left if left > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100, help="ops per RPC run")
    parser.add_argument("--cli-ops", type=int, default=20, help="ops per CLI run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    with dockyard_daemon() as daemon:
        env = env_for(daemon.address)

        def dockyard_cli(*a: str) -> None:
            subprocess.run([str(BIN / "dockyard"), *a], env=env, check=True, capture_output=True)

        rpc = statistics.median(rpc_rate(daemon, args.ops, r) for r in range(args.runs))
        dy_cli = statistics.median(cli_rate(dockyard_cli, args.cli_ops, f"c{r}") for r in range(args.runs))
        dy_call = call_seconds(dockyard_cli, args.cli_ops)

    ct_cli = ct_call = None
    with containerd() as ctrd:
        if ctrd is not None:
            def ctr_cli(*a: str) -> None:
                ctrd.ctr(*a)

            ct_cli = statistics.median(cli_rate(ctr_cli, args.cli_ops, f"c{r}") for r in range(args.runs))
            ct_call = call_seconds(ctr_cli, args.cli_ops)

    report("snapshot prepare+commit, CLI per op (ops/s)", dy_cli, ct_cli, "ops/s", lower_is_better=False)
    report("snapshot prepare+commit, CLI less start-up (ops/s)", without_startup(dy_cli, dy_call),
           without_startup(ct_cli, ct_call) if ct_cli else None, "ops/s", lower_is_better=False)
    report("snapshot prepare+commit, RPC client (ops/s)", rpc, None, "ops/s", lower_is_better=False)
    print(f"(one CLI call: dockyard {dy_call * 1000:.0f} ms, ctr "
          f"{'n/a' if ct_call is None else f'{ct_call * 1000:.0f} ms'})")


if __name__ == "__main__":
    main()
