"""Benchmark: prepare + commit of an empty layer on the local snapshotters.

    .venv/bin/python bench/snapshots_local.py [--ops 200] [--runs 5] [--dir /var/tmp]

Each run uses a fresh snapshotter root and chains ``--ops`` layers (each
prepared on the previous commit, as an unpack does).  Prints ops/s per run and
the median of the runs for each backend.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from actors.snapshots import NativeSnapshotter, OverlaySnapshotter

BACKENDS = {"overlayfs": OverlaySnapshotter, "native": NativeSnapshotter}


def one_run(cls, ops: int, parent_dir: str | None) -> float:
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-", dir=parent_dir) as root:
        with cls(root) as sn:
            parent = ""
            start = time.perf_counter()
            for i in range(ops):
                sn.prepare(f"extract-{i}", parent)
                sn.commit(f"layer-{i}", f"extract-{i}")
                parent = f"layer-{i}"
            elapsed = time.perf_counter() - start
    return ops / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to create the roots")
    parser.add_argument("--backend", choices=sorted(BACKENDS), action="append")
    args = parser.parse_args()
    for name in args.backend or sorted(BACKENDS):
        rates = [one_run(BACKENDS[name], args.ops, args.dir) for _ in range(args.runs)]
        runs = " ".join(f"{r:.0f}" for r in rates)
        print(f"{name}: prepare+commit of an empty layer: median {statistics.median(rates):.0f} ops/s "
              f"over {args.runs} runs of {args.ops} (runs: {runs})")


if __name__ == "__main__":
    main()
