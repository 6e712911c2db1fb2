"""Ingest 1 GiB through the local content store's Writer; compare with hashlib.

    .venv/bin/python bench/content_local.py [--mib 1024] [--chunk-mib 4] [--dir DIR]

Prints, as the median of 3 runs: hashlib sha256 over the same chunks, Writer
write() of every chunk, write()+commit without fsync, and write()+commit with
fsync (the real path).  The goal is Writer >= 0.5x hashlib's rate.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from actors.content import LocalStore  # noqa: E402


def chunks(pool: memoryview, total: int, chunk: int):
    """``total`` bytes in ``chunk``-sized slices cycling through ``pool``."""
    pos = 0
    for _ in range(total // chunk):
        if pos + chunk > len(pool):
            pos = 0
        yield pool[pos : pos + chunk]
        pos += chunk


def run_hashlib(pool, total, chunk) -> float:
    start = time.perf_counter()
    h = hashlib.sha256()
    for part in chunks(pool, total, chunk):
        h.update(part)
    h.hexdigest()
    return time.perf_counter() - start


def run_writer(store: LocalStore, pool, total, chunk, *, commit: bool, fsync: bool) -> float:
    start = time.perf_counter()
    writer = store.writer("bench-ingest", total=total)
    for part in chunks(pool, total, chunk):
        writer.write(part)
    if commit:
        digest = writer.commit(total, fsync=fsync)
    else:
        digest = writer.digest()
        writer.close()
    elapsed = time.perf_counter() - start
    if commit:
        store.delete(digest)
    else:
        store.abort("bench-ingest")
    return elapsed


def _clean_then(fn) -> float:
    os.sync()  # start each run without the previous run's dirty pages
    return fn()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=4)
    parser.add_argument("--dir", default=None, help="store root parent (default: a temp dir)")
    args = parser.parse_args()
    total, chunk = args.mib << 20, args.chunk_mib << 20
    pool = memoryview(os.urandom(min(total, 64 << 20)))
    parent = tempfile.mkdtemp(prefix="dockyard-bench-", dir=args.dir)
    try:
        store = LocalStore(os.path.join(parent, "io.dockyard.content.v1.content"))
        rows = {
            "hashlib sha256": lambda: run_hashlib(pool, total, chunk),
            "Writer.write": lambda: run_writer(store, pool, total, chunk, commit=False, fsync=False),
            "write+commit (no fsync)": lambda: run_writer(store, pool, total, chunk, commit=True, fsync=False),
            "write+commit (fsync)": lambda: run_writer(store, pool, total, chunk, commit=True, fsync=True),
        }
        base = None
        print(f"{args.mib} MiB in {args.chunk_mib} MiB chunks, median of 3")
        for name, fn in rows.items():
            rate = args.mib / statistics.median(_clean_then(fn) for _ in range(3))
            base = base or rate
            print(f"  {name:<26} {rate:8.0f} MiB/s  {rate / base:5.2f}x hashlib")
    finally:
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
