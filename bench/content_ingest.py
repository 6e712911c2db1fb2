"""Content ingest figures: 1 GiB from the CLI, and many small blobs, beside containerd.

    python -m bench content_ingest      (or: python bench/content_ingest.py [--mib 1024] [--blobs 10000])

1. A 1 GiB file of random bytes through ``dockyard content ingest`` and ``ctr
   content ingest`` (stdin redirected from the file, process start to exit), and
   Python's hashlib sha256 over the same file: the hashing limit.  The three are
   interleaved round by round (hashlib, dockyard, ctr, hashlib, ...) and each
   round's ratio to hashlib is taken before the median, so a burst of load on the
   shared machine hits both sides of a ratio.  dockyard gets stdin's descriptor
   (a regular file) and reads it itself; ``--pipe`` measures the streamed path
   (``cat file |``) instead.
2. Small blobs (1 KiB each), three ways: an OCI archive of N one-KiB layers
   imported with ``images import --no-unpack`` by both CLIs (each writes every
   blob through its content service in one process: the like-for-like batch
   ingest); dockyard through one msgpack-RPC connection (``Content.Write`` per
   blob, sequential, then 8 at a time); and one CLI process per blob,
   ``dockyard content ingest`` beside ``ctr content ingest``.

Every figure is the median of 3 runs (``--runs``); the page cache is flushed
(``sync``) before each large run so one run's writeback does not slow the next.
``--only big`` runs just the 1 GiB figure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import trio

from support import BIN, containerd, dockyard_daemon, env_for, report

from actors.rpc.client import open_client
from wire.client import Client

RUNS = 3
MiB = 1 << 20


def make_file(path: Path, mib: int) -> None:
    block = os.urandom(4 * MiB)
    with open(path, "wb") as fh:
        for i in range(mib // 4):
            fh.write(hashlib.sha256(block + i.to_bytes(4, "big")).digest() + block[32:])  # no two blocks alike


def hashlib_seconds(path: Path) -> float:
    start = time.perf_counter()
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(4 * MiB)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            h.update(view[:n])
    h.hexdigest()
    return time.perf_counter() - start


def timed(cmd: list[str], *, stdin_path: Path, env: dict | None = None, pipe: bool = False) -> float:
    os.sync()
    with open(stdin_path, "rb") as fh:
        start = time.perf_counter()
        if pipe:  # the streamed path: stdin is a pipe fed by cat
            cat = subprocess.Popen(["cat"], stdin=fh, stdout=subprocess.PIPE)
            subprocess.run(cmd, stdin=cat.stdout, env=env, check=True, capture_output=True)
            cat.stdout.close()
            cat.wait()
        else:
            subprocess.run(cmd, stdin=fh, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def big_ingest(path: Path, mib: int, d, ctrd, *, pipe: bool = False) -> None:
    env = env_for(d.address)
    dockyard = [str(BIN / "dockyard"), "content", "ingest"]
    hash_times, dy_times, ct_times, dy_ratios, ct_ratios = [], [], [], [], []
    for i in range(RUNS):  # interleaved: hashlib, dockyard, ctr, hashlib, ...
        os.sync()
        hash_times.append(hashlib_seconds(path))
        dy_times.append(timed([*dockyard, f"big-{i}"], stdin_path=path, env=env, pipe=pipe))
        dy_ratios.append(hash_times[-1] / dy_times[-1])
        digest = subprocess.run([str(BIN / "dockyard"), "content", "ls", "-q"], env=env, check=True,
                                capture_output=True, text=True).stdout.split()
        subprocess.run([str(BIN / "dockyard"), "content", "rm", *digest], env=env, check=True, capture_output=True)
        if ctrd is not None:
            ct_times.append(timed(["ctr", "--address", ctrd.address, "content", "ingest", f"big-{i}"],
                                  stdin_path=path, pipe=pipe))
            ct_ratios.append(hash_times[-1] / ct_times[-1])
            digest = ctrd.ctr("content", "ls", "-q").stdout.decode().split()
            ctrd.ctr("content", "rm", *digest)
    hash_rate = mib / statistics.median(hash_times)
    dy_rate = mib / statistics.median(dy_times)
    ct_rate = mib / statistics.median(ct_times) if ct_times else None
    how = "through a pipe" if pipe else "from the CLI"
    report(f"ingest {mib} MiB {how}", dy_rate, ct_rate, "MiB/s", lower_is_better=False)
    print(f"{'  hashlib sha256 over the same file':<48} {hash_rate:.4g} MiB/s   "
          f"dockyard = {statistics.median(dy_ratios):.2f}x hashlib (goal >= 0.5x)"
          + (f", containerd = {statistics.median(ct_ratios):.2f}x" if ct_ratios else "")
          + "   (medians of per-round ratios)", flush=True)


def small_blobs_rpc(d, n: int) -> None:
    payloads = [os.urandom(1024) for _ in range(n)]

    def sequential() -> float:
        with Client(d.address, namespace="small-seq") as c:
            c.call("Leases.Create", {"id": "bench"})
            start = time.perf_counter()
            for i, data in enumerate(payloads):
                c.upload("Content.Write", {"ref": f"s-{i}"}, [data], lease="bench")
            elapsed = time.perf_counter() - start
            c.call("Leases.Delete", {"id": "bench", "sync": True})
        return elapsed

    async def concurrent(width: int) -> float:
        async with open_client(d.address, namespace="small-par") as client:
            await client.call("Leases.Create", {"id": "bench"}, timeout=10)
            start = trio.current_time()
            send, receive = trio.open_memory_channel(0)

            async def worker():
                async for i in receive:
                    await client.upload("Content.Write", {"ref": f"p-{i}"}, [payloads[i]], timeout=30,
                                        lease="bench")

            async with trio.open_nursery() as nursery:
                for _ in range(width):
                    nursery.start_soon(worker)
                async with send:
                    for i in range(n):
                        await send.send(i)
            elapsed = trio.current_time() - start
            await client.call("Leases.Delete", {"id": "bench", "sync": True}, timeout=60)
        return elapsed

    seq = statistics.median(sequential() for _ in range(RUNS))
    par = statistics.median(trio.run(concurrent, 8) for _ in range(RUNS))
    print(f"{f'{n:,} small blobs over one connection':<48} sequential {n / seq:,.0f} blobs/s   "
          f"8 in flight {n / par:,.0f} blobs/s", flush=True)


def small_blobs_cli(d, ctrd, m: int) -> None:
    payloads = [os.urandom(1024) for _ in range(m)]
    env = env_for(d.address)

    def dockyard_run() -> float:
        start = time.perf_counter()
        for i, data in enumerate(payloads):
            subprocess.run([str(BIN / "dockyard"), "content", "ingest", f"c-{i}"], input=data, env=env,
                           check=True, capture_output=True)
        return time.perf_counter() - start

    def ctr_run() -> float:
        start = time.perf_counter()
        for i, data in enumerate(payloads):
            ctrd.ctr("content", "ingest", f"c-{i}", input=data)
        return time.perf_counter() - start

    dy = statistics.median(dockyard_run() for _ in range(RUNS))
    ct = statistics.median(ctr_run() for _ in range(RUNS)) if ctrd else None
    report(f"{m} small blobs, one CLI process each", m / dy, m / ct if ct else None, "blobs/s",
           lower_is_better=False)


def make_archive(path: Path, n: int) -> None:
    """An OCI layout tar: index -> manifest -> config + ``n`` distinct 1 KiB layers."""
    import io
    import json
    import tarfile

    def blob(tar, data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        info = tarfile.TarInfo("blobs/sha256/" + digest.split(":")[1])
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        return {"digest": digest, "size": len(data)}

    def add(tar, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w") as tar:
        layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(tar, os.urandom(1024))}
                  for _ in range(n)]
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}})
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          **blob(tar, config.encode())},
                               "layers": layers}).encode()
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(tar, manifest),
                                "platform": {"architecture": "amd64", "os": "linux"},
                                "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
        add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tar, "index.json", json.dumps(index).encode())


def small_blobs_import(work: Path, d, ctrd, n: int) -> None:
    archive = work / "small.tar"
    make_archive(archive, n)
    env = env_for(d.address)
    runs = iter(range(100))

    def dockyard_run() -> float:
        ns = f"import-{next(runs)}"
        start = time.perf_counter()
        subprocess.run([str(BIN / "dockyard"), "-n", ns, "images", "import", "--no-unpack", "--all-platforms",
                        "--base-name", "bench/small", str(archive)], env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    def ctr_run() -> float:
        ns = f"import-{next(runs)}"
        start = time.perf_counter()
        ctrd.ctr("images", "import", "--no-unpack", "--all-platforms", "--base-name", "bench/small",
                 str(archive), namespace=ns)
        return time.perf_counter() - start

    dy = statistics.median(dockyard_run() for _ in range(RUNS))
    ct = statistics.median(ctr_run() for _ in range(RUNS)) if ctrd else None
    report(f"{n:,} small blobs via images import --no-unpack", (n + 3) / dy, (n + 3) / ct if ct else None,
           "blobs/s", lower_is_better=False)


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--cli-blobs", type=int, default=100)
    parser.add_argument("--only", choices=("big", "import", "rpc", "cli"), default=None)
    parser.add_argument("--runs", type=int, default=RUNS, help="rounds per figure (medians are reported)")
    parser.add_argument("--pipe", action="store_true", help="1 GiB figure: stdin through a pipe (streamed)")
    args = parser.parse_args()
    RUNS = args.runs
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-ingest-"))
    try:
        path = work / "big.bin"
        if args.only in (None, "big"):
            make_file(path, args.mib)
        with dockyard_daemon() as d, containerd() as ctrd:
            if args.only in (None, "big"):
                big_ingest(path, args.mib, d, ctrd, pipe=args.pipe)
            if args.only in (None, "import"):
                small_blobs_import(work, d, ctrd, args.blobs)
            if args.only in (None, "rpc"):
                small_blobs_rpc(d, args.blobs)
            if args.only in (None, "cli"):
                small_blobs_cli(d, ctrd, args.cli_blobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
