"""GC figures: 2,000 unreferenced blobs released by deleting their lease, beside containerd.

    .venv/bin/python bench/gc.py [--blobs 2000] [--runs 3]

1. Time until gone: 2,000 small blobs are written under one lease, then the lease
   is deleted with ``sync`` (the call returns once a collection that started after
   the delete has finished); the figure is the time of that call, checked by
   counting the blobs left on disk.  Also the time until gone without ``sync``
   (the scheduler's own timing: the next tick after a deletion).
2. Pause: while the collection runs, another connection keeps sending small
   requests (a read, ``Content.Info``, and a write, ``Leases.Create``); the figure
   is their p99 latency during collections beside the p99 when idle.

containerd is driven over its gRPC socket (ctr cannot write content under a
lease); that needs the ``grpcio`` package and is skipped without it.  Medians of
``--runs`` runs, ratios printed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from support import containerd, dockyard_daemon, percentile, report  # noqa: E402

from wire.client import Client  # noqa: E402


# -- protobuf by hand (containerd's messages here are flat) -------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value) if value else b""


class ContainerdGRPC:
    """The few containerd calls the bench needs, over grpcio with hand-encoded messages."""

    def __init__(self, address: str, namespace: str = "default") -> None:
        import grpc

        self.channel = grpc.insecure_channel("unix:" + address)
        self.ns = namespace
        ident = lambda b: b  # noqa: E731
        self._lease_create = self.channel.unary_unary("/containerd.services.leases.v1.Leases/Create",
                                                      request_serializer=ident, response_deserializer=ident)
        self._lease_delete = self.channel.unary_unary("/containerd.services.leases.v1.Leases/Delete",
                                                      request_serializer=ident, response_deserializer=ident)
        self._write = self.channel.stream_stream("/containerd.services.content.v1.Content/Write",
                                                 request_serializer=ident, response_deserializer=ident)
        self._info = self.channel.unary_unary("/containerd.services.content.v1.Content/Info",
                                              request_serializer=ident, response_deserializer=ident)

    def _meta(self, lease: str | None = None):
        meta = [("containerd-namespace", self.ns)]
        if lease:
            meta.append(("containerd-lease", lease))
        return meta

    def lease_create(self, lease_id: str) -> None:
        self._lease_create(_field_bytes(1, lease_id.encode()), metadata=self._meta(), timeout=30)

    def lease_delete(self, lease_id: str, sync: bool) -> None:
        self._lease_delete(_field_bytes(1, lease_id.encode()) + _field_int(2, int(sync)), metadata=self._meta(),
                           timeout=120)

    def write(self, ref: str, data: bytes, lease: str) -> None:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        msg = (_field_int(1, 2) + _field_bytes(2, ref.encode()) + _field_int(3, len(data))
               + _field_bytes(4, digest.encode()) + _field_bytes(6, data))
        for _ in self._write(iter([msg]), metadata=self._meta(lease), timeout=30):
            pass

    def info(self, digest: str) -> None:
        self._info(_field_bytes(1, digest.encode()), metadata=self._meta(), timeout=30)

    def close(self) -> None:
        self.channel.close()


# -- the two stores behind one face -------------------------------------------------------------------

class DockyardSide:
    name = "dockyard"

    def __init__(self, d) -> None:
        self.d = d
        self.last: dict | None = None
        self.blobs_dir = d.root / "io.dockyard.content.v1.content" / "blobs" / "sha256"

    def client(self):
        return Client(self.d.address, namespace="default", timeout=120).connect()

    def fill(self, c, lease: str, payloads: list[bytes]) -> None:
        c.call("Leases.Create", {"id": lease})
        for i, data in enumerate(payloads):
            c.upload("Content.Write", {"ref": f"{lease}-{i}"}, [data], lease=lease)

    def delete(self, c, lease: str, sync: bool) -> None:
        c.call("Leases.Delete", {"id": lease, "sync": sync})
        if sync:
            self.last = c.call("GC.Stats")["last"]  # the collection the delete waited for

    def small_read(self, c, digest: str) -> None:
        c.call("Content.Info", {"digest": digest})

    def small_write(self, c, lease: str) -> None:
        c.call("Leases.Create", {"id": lease})


class ContainerdSide:
    name = "containerd"

    def __init__(self, ctrd) -> None:
        self.ctrd = ctrd
        self.blobs_dir = Path(ctrd.base) / "root" / "io.containerd.content.v1.content" / "blobs" / "sha256"

    def client(self):
        return ContainerdGRPC(self.ctrd.address)

    def fill(self, c, lease: str, payloads: list[bytes]) -> None:
        c.lease_create(lease)
        for i, data in enumerate(payloads):
            c.write(f"{lease}-{i}", data, lease)

    def delete(self, c, lease: str, sync: bool) -> None:
        c.lease_delete(lease, sync)

    def small_read(self, c, digest: str) -> None:
        c.info(digest)

    def small_write(self, c, lease: str) -> None:
        c.lease_create(lease)


def count(path: Path) -> int:
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def payload_set(run: int, n: int) -> list[bytes]:
    return [f"gc bench run {run} blob {i} ".encode() + os.urandom(64) for i in range(n)]


def release_sync(side, n: int, runs: int) -> float:
    times = []
    c = side.client()
    try:
        for run in range(runs):
            lease = f"sync-{run}"
            side.fill(c, lease, payload_set(run, n))
            before = count(side.blobs_dir)
            start = time.perf_counter()
            side.delete(c, lease, sync=True)
            times.append(time.perf_counter() - start)
            left = count(side.blobs_dir)
            assert before - left >= n, f"{side.name}: {before - left} of {n} blobs gone after a sync delete"
    finally:
        c.close()
    return statistics.median(times)


def release_async(side, n: int, runs: int) -> float:
    times = []
    c = side.client()
    try:
        for run in range(runs):
            lease = f"async-{run}"
            side.fill(c, lease, payload_set(100 + run, n))
            before = count(side.blobs_dir)
            start = time.perf_counter()
            side.delete(c, lease, sync=False)
            while before - count(side.blobs_dir) < n:
                if time.perf_counter() - start > 60:
                    raise RuntimeError(f"{side.name}: blobs not gone within 60 s")
                time.sleep(0.002)
            times.append(time.perf_counter() - start)
    finally:
        c.close()
    return statistics.median(times)


def pause(side, n: int, runs: int) -> tuple[float, float, float, float]:
    """p99 of small reads and writes: idle, and while collections of ``n`` blobs run."""
    c = side.client()
    keep = b"kept blob for Content.Info"
    keep_digest = "sha256:" + hashlib.sha256(keep).hexdigest()
    side.fill(c, "pause-keep", [keep])
    samples: list[tuple[float, float, str]] = []  # (start, latency, kind)
    stop = threading.Event()

    def load() -> None:
        lc = side.client()
        i = 0
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                side.small_read(lc, keep_digest)
                t1 = time.perf_counter()
                samples.append((t0, t1 - t0, "read"))
                side.small_write(lc, f"probe-{threading.get_ident()}-{i}")
                t2 = time.perf_counter()
                samples.append((t1, t2 - t1, "write"))
                i += 1
        finally:
            lc.close()

    windows: list[tuple[float, float]] = []
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)  # idle baseline
        idle_end = time.perf_counter()
        for run in range(runs):
            lease = f"pause-{run}"
            side.fill(c, lease, payload_set(200 + run, n))
            start = time.perf_counter()
            side.delete(c, lease, sync=True)
            windows.append((start, time.perf_counter()))
    finally:
        stop.set()
        thread.join(30)
        c.close()

    def p99(kind: str, during: bool) -> float:
        if during:
            picked = [lat for t, lat, k in samples if k == kind and any(a <= t <= b for a, b in windows)]
        else:
            picked = [lat for t, lat, k in samples if k == kind and t < idle_end]
        return percentile(picked, 99) * 1000 if picked else float("nan")

    return p99("read", False), p99("read", True), p99("write", False), p99("write", True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blobs", type=int, default=2000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    try:
        import grpc  # noqa: F401

        have_grpc = True
    except ImportError:
        have_grpc = False
        print("(grpcio not installed: containerd columns are n/a; pip install grpcio to compare)")

    with dockyard_daemon() as d, containerd() as ctrd:
        sides = [DockyardSide(d)] + ([ContainerdSide(ctrd)] if ctrd is not None and have_grpc else [])
        figures: dict[str, dict[str, float]] = {s.name: {} for s in sides}
        for side in sides:
            f = figures[side.name]
            f["sync"] = release_sync(side, args.blobs, args.runs)
            f["async"] = release_async(side, args.blobs, args.runs)
            f["idle_read"], f["gc_read"], f["idle_write"], f["gc_write"] = pause(side, args.blobs, args.runs)
        dy, ct = figures["dockyard"], figures.get("containerd", {})
        n = f"{args.blobs:,}"
        report(f"{n} blobs, lease rm --sync: until gone", dy["sync"], ct.get("sync"), "s")
        report(f"{n} blobs, lease rm: until gone (scheduler)", dy["async"], ct.get("async"), "s")
        report("small read p99, idle", dy["idle_read"], ct.get("idle_read"), "ms")
        report("small read p99, during collection", dy["gc_read"], ct.get("gc_read"), "ms")
        report("small write p99, idle", dy["idle_write"], ct.get("idle_write"), "ms")
        report("small write p99, during collection", dy["gc_write"], ct.get("gc_write"), "ms")
        last = sides[0].last or {}
        print(f"dockyard's last collection after a sync delete: {last.get('counts')} in {last.get('duration', 0) * 1000:.1f} ms "
              f"(mark {last.get('mark', 0) * 1000:.1f} ms outside the lock, "
              f"pause {last.get('pause', 0) * 1000:.1f} ms)", flush=True)


if __name__ == "__main__":
    main()
