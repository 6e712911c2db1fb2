"""Foundation figures: CLI round trip, RPC latency through one actor, label updates, events fan-out, idle RSS.

    python -m bench foundation        (or: python bench/foundation.py)
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time

from support import BIN, containerd, dockyard_daemon, env_for, median_time, percentile, report, rss_mib

from wire.client import Client

RUNS = 5


def cli_version(d, ctrd) -> None:
    env = env_for(d.address)

    def dockyard_version():
        subprocess.run([str(BIN / "dockyard"), "version"], env=env, check=True, capture_output=True)

    def ctr_version():
        ctrd.ctr("version")

    dy = statistics.median(median_time(dockyard_version, 10) for _ in range(RUNS))
    ct = statistics.median(median_time(ctr_version, 10) for _ in range(RUNS)) if ctrd else None
    report("`version` round trip (process start to exit)", dy * 1000, ct * 1000 if ct else None, "ms")


def rpc_latency(d) -> None:
    with Client(d.address, namespace="default") as c:
        c.call("Namespaces.Create", {"name": "bench"})
        for _ in range(200):
            c.call("Namespaces.Get", {"name": "bench"})
        samples = []
        for _ in range(5000):
            start = time.perf_counter()
            c.call("Namespaces.Get", {"name": "bench"})
            samples.append(time.perf_counter() - start)
    print(f"{'msgpack-RPC round trip through one actor':<48} p50 {percentile(samples, 50) * 1e3:.3f} ms   "
          f"p99 {percentile(samples, 99) * 1e3:.3f} ms   (goal p50 < 1 ms)", flush=True)


def label_updates(d, ctrd) -> None:
    n = 10_000

    def dockyard_updates():
        with Client(d.address, namespace="default") as c:
            for i in range(n):
                c.call("Namespaces.Update", {"name": "bench", "labels": {"k": str(i)}, "update_mask": ["labels.k"]})

    dy = statistics.median(median_time(dockyard_updates, 1) for _ in range(3))
    print(f"{'10,000 namespace label updates (one client)':<48} {dy:.2f} s = {n / dy:,.0f} updates/s", flush=True)
    # Through the CLIs, one process per update, so both sides pay the same kind of cost.
    m = 100
    env = env_for(d.address)

    def dockyard_cli():
        for i in range(m):
            subprocess.run([str(BIN / "dockyard"), "namespaces", "label", "bench", f"k={i}"], env=env,
                           check=True, capture_output=True)

    def ctr_cli():
        for i in range(m):
            ctrd.ctr("namespaces", "label", "bench", f"k={i}")

    if ctrd:
        ctrd.ctr("namespaces", "create", "bench", check=False)
    dyc = median_time(dockyard_cli, 3)
    ctc = median_time(ctr_cli, 3) if ctrd else None
    report("100 label updates through the CLI", dyc, ctc, "s")


def events_fanout(d) -> None:
    subscribers, events = 100, 10_000
    ready = threading.Barrier(subscribers + 1)
    results: list[list[int]] = [[] for _ in range(subscribers)]

    def subscribe(i):
        with Client(d.address) as c:
            stream = c.stream("Events.Subscribe", {"filters": ['topic=="/bench/fanout"']})
            ready.wait()
            for envelope in stream:
                results[i].append(envelope["seq"])
                if len(results[i]) == events:
                    break

    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(subscribers)]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.5)
    start = time.perf_counter()
    with Client(d.address, namespace="default") as c:
        for i in range(events):
            c.call("Events.Publish", {"topic": "/bench/fanout", "event": {"i": i}})
    for t in threads:
        t.join(300)
    elapsed = time.perf_counter() - start
    complete = sum(1 for r in results if len(r) == events and r == sorted(r) and len(set(r)) == events)
    print(f"{'events: 100 subscribers x 10,000 events':<48} {complete}/100 got all in order; "
          f"{events * subscribers / elapsed:,.0f} deliveries/s ({events / elapsed:,.0f} events/s)", flush=True)


def idle_rss(d, ctrd) -> None:
    time.sleep(1)
    dy = rss_mib(d.proc.pid)
    ct = rss_mib(ctrd.proc.pid) if ctrd else None
    report("daemon idle RSS (goal < 60 MB)", dy, ct, "MiB")


def main() -> None:
    config = {"plugins": {"io.dockyard.event.v1.exchange": {"subscriber_buffer": 20_000}}}
    with dockyard_daemon(**config) as d, containerd() as ctrd:
        idle_rss(d, ctrd)
        cli_version(d, ctrd)
        rpc_latency(d)
        label_updates(d, ctrd)
        events_fanout(d)


if __name__ == "__main__":
    main()
