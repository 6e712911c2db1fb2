"""Container figures beside containerd 1.6 + runc, measured in the same run.

    .venv/bin/python bench/run.py [--runs 10] [--count 50] [--skip-containerd] [--parts rm,latency,many,restart,group]
                                  [--restarts 1]

- ``run --rm busybox /bin/true``: median wall time of the CLI (``dockyard run`` vs ``ctr run``)
- ``--count`` containers started detached at once: wall time until all run; then kill + delete all
- exit event latency: SIGKILL of a container's process → ``/tasks/exit`` at a subscriber
- daemon kill -9 + restart with ``--count`` running tasks: time until all are listed running again,
  and exits lost/repeated (must be 0)
- memory with ``--count`` running: shim PSS per container, daemon RSS
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import BIN, containerd, dockyard_daemon, env_for, pss_mib, report, rss_mib  # noqa: E402

from tests.support.images import write_busybox_image  # noqa: E402

IMAGE = "docker.io/library/busybox:latest"
PARTS = ("rm", "latency", "many", "restart", "group")


class Side:
    """One system under test, driven through its CLI (and its event stream for latency)."""

    name = ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess: ...

    def run_rm_true(self, cid: str) -> None:
        self.cli("run", "--rm", IMAGE, cid, "/bin/true")

    def run_detached(self, cid: str) -> None:
        self.cli("run", "-d", IMAGE, cid, "sleep", "100000")

    def kill_and_delete(self, cid: str) -> None:
        self.cli("tasks", "kill", "-s", "SIGKILL", cid, check=False)
        self.wait_stopped(cid)
        self.cli("tasks", "rm", cid)
        self.cli("containers", "rm", cid)


class Dockyard(Side):
    name = "dockyard"

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self.env = env_for(daemon.address)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "dockyard"), *args], capture_output=True, env=self.env, check=check)

    def tasks(self) -> dict[str, dict]:
        return {t["container_id"]: t for t in self.daemon.call("Tasks.List")["tasks"]}

    def wait_stopped(self, cid: str) -> None:
        self.cli("tasks", "wait", cid, check=False)

    def pid(self, cid: str) -> int:
        return self.tasks()[cid]["pid"]

    def daemon_pid(self) -> int:
        return self.daemon.proc.pid

    def shim_pids(self) -> list[int]:
        return _pids("dockyard-shim-runc-v1", str(self.daemon.base))

    def subscribe(self):
        client = self.daemon.client(namespace=None)
        stream = client.stream("Events.Subscribe", {"filters": ['topic=="/tasks/exit"']})

        def items():
            for envelope in stream:
                yield envelope["event"]["container_id"]

        return client, items()

    def restart_kill9(self) -> float:
        self.daemon.kill9()
        start = time.perf_counter()
        self.daemon.start(wait=False)
        return start


class Containerd(Side):
    name = "containerd"

    def __init__(self, ctrd) -> None:
        self.ctrd = ctrd

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.ctrd.ctr(*args, check=check)

    def tasks(self) -> dict[str, dict]:
        out = self.cli("tasks", "ls", check=False).stdout.decode().splitlines()[1:]
        return {f[0]: {"pid": int(f[1]), "status": f[2].lower()} for f in (line.split() for line in out) if len(f) == 3}

    def wait_stopped(self, cid: str) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.tasks().get(cid, {}).get("status") != "stopped":
            time.sleep(0.01)

    def pid(self, cid: str) -> int:
        return self.tasks()[cid]["pid"]

    def daemon_pid(self) -> int:
        return self.ctrd.proc.pid

    def shim_pids(self) -> list[int]:
        return _pids("containerd-shim-runc-v2", str(self.ctrd.base))

    def subscribe(self):
        proc = subprocess.Popen(["ctr", "--address", self.ctrd.address, "events"], stdout=subprocess.PIPE)

        def items():
            for line in proc.stdout:
                text = line.decode()
                if "/tasks/exit" in text:
                    yield json.loads(text[text.index("{"):])["container_id"]

        return proc, items()

    def restart_kill9(self) -> float:
        proc = self.ctrd.proc
        proc.kill()
        proc.wait()
        start = time.perf_counter()
        cfg = self.ctrd.base / "config.toml"
        log = open(self.ctrd.base / "containerd.log", "ab")
        self.ctrd.proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        return start


def _pids(binary: str, marker: str) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if binary in line and marker in line]


# -- workloads --------------------------------------------------------------------------------


def bench_run_rm(side: Side, runs: int) -> float:
    times = []
    side.run_rm_true("warm")
    for i in range(runs):
        start = time.perf_counter()
        side.run_rm_true(f"rm{i}")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_many(side: Side, count: int) -> tuple[float, float]:
    ids = [f"many{i}" for i in range(count)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(side.run_detached, ids))
    while sum(1 for t in side.tasks().values() if t["status"] == "running") < count:
        time.sleep(0.01)
    started = time.perf_counter() - start
    return started, 0.0


def teardown_many(side: Side, count: int) -> float:
    ids = [f"many{i}" for i in range(count)]
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        list(pool.map(side.kill_and_delete, ids))
    return time.perf_counter() - start


def memory(side: Side, count: int) -> tuple[float, float]:
    shims = side.shim_pids()
    pss = sum(pss_mib(p) for p in shims) / count
    return pss, rss_mib(side.daemon_pid())


def exit_latency(side: Side, runs: int) -> float:
    handle, items = side.subscribe()
    arrivals: dict[str, float] = {}
    done = threading.Event()

    def reader():
        try:
            for cid in items:
                arrivals.setdefault(cid, time.perf_counter())
                if done.is_set():
                    return
        except Exception:  # the stream ends when the daemon is killed later on
            return

    threading.Thread(target=reader, daemon=True).start()
    time.sleep(0.3)
    latencies = []
    for i in range(runs):
        cid = f"lat{i}"
        side.run_detached(cid)
        pid = side.pid(cid)
        sent = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while cid not in arrivals and time.monotonic() < deadline:
            time.sleep(0.0005)
        if cid in arrivals:
            latencies.append(arrivals[cid] - sent)
        side.cli("tasks", "rm", cid, check=False)
        side.cli("containers", "rm", cid, check=False)
    done.set()
    if hasattr(handle, "kill"):
        handle.kill()
    else:
        handle.close()
    return statistics.median(latencies) if latencies else float("nan")


def restart(side: Side, count: int, victim: str = "many0") -> tuple[float, int]:
    """kill -9 the daemon with ``count`` running, kill one task meanwhile, time until all are listed again."""
    victim_pid = side.pid(victim)
    start = side.restart_kill9()
    try:
        os.kill(victim_pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone: nothing to kill while the daemon is down
        pass
    listed = None
    while time.perf_counter() - start < 60:
        try:
            tasks = side.tasks()
        except Exception:
            time.sleep(0.005)
            continue
        if len(tasks) >= count and sum(1 for t in tasks.values() if t["status"] in ("running", "stopped")) >= count:
            listed = time.perf_counter() - start
            break
        time.sleep(0.005)
    if isinstance(side, Dockyard):
        side.daemon.wait_ready()
    return listed or float("nan"), 0


def count_exits(side: Dockyard, since: int, cid: str) -> int:
    with side.daemon.client(namespace=None) as c:
        n = 0
        stream = c.stream("Events.Subscribe", {"filters": ['topic=="/tasks/exit"'], "since": since})
        deadline = time.monotonic() + 1.0
        c._sock.settimeout(0.5)
        try:
            for envelope in stream:
                if envelope["event"]["container_id"] == cid:
                    n += 1
                if time.monotonic() > deadline:
                    break
        except Exception:
            pass
        return n


def measure(side: Side, args) -> dict:
    figures = {}
    parts = args.parts
    if "rm" in parts:
        print(f"[{side.name}] run --rm ...", flush=True)
        figures["run_rm"] = bench_run_rm(side, args.runs)
    if "latency" in parts:
        print(f"[{side.name}] exit latency ...", flush=True)
        figures["exit_latency"] = exit_latency(side, args.runs)
    if parts & {"many", "restart"}:
        print(f"[{side.name}] {args.count} detached ...", flush=True)
        figures["start_many"], _ = bench_many(side, args.count)
        figures["shim_pss"], figures["daemon_rss"] = memory(side, args.count)
    if "restart" in parts:
        print(f"[{side.name}] kill -9 + restart ...", flush=True)
        since, times = None, []
        for i in range(args.restarts):
            if isinstance(side, Dockyard):  # the backlog starts afresh with each daemon: count the last victim
                since = int(next(side.daemon.root.glob("io.dockyard.event.v1.*/sequence")).read_text())
            victim = f"many{i % args.count}"
            times.append(restart(side, args.count, victim)[0])
        figures["restart"] = statistics.median(times)
        if args.restarts > 1:
            print(f"[{side.name}] restarts: {' '.join(f'{t:.3f}' for t in times)}", flush=True)
        if since is not None:
            time.sleep(0.5)
            figures["victim_exits"] = count_exits(side, since, victim)
    if parts & {"many", "restart"}:
        figures["teardown_many"] = teardown_many(side, args.count)
    if "group" in parts and isinstance(side, Dockyard):
        print(f"[{side.name}] {args.count} in one shim group ...", flush=True)
        ids = [f"grp{i}" for i in range(args.count)]
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.count) as pool:
            list(pool.map(lambda cid: side.cli("run", "-d", "--runtime-group", "bench", IMAGE, cid,
                                               "sleep", "100000"), ids))
        figures["start_group"] = time.perf_counter() - start
        figures["group_pss"], figures["group_rss"] = memory(side, args.count)
        with concurrent.futures.ThreadPoolExecutor(args.count) as pool:
            list(pool.map(side.kill_and_delete, ids))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--skip-containerd", action="store_true")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated subset of {','.join(PARTS)} (memory is measured with many/restart)")
    parser.add_argument("--restarts", type=int, default=1, help="kill -9 + restart this many times (median)")
    args = parser.parse_args()
    args.parts = set(args.parts.split(","))
    if args.parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(args.parts - set(PARTS)))}")
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-img-") as tmp:
        tar = os.path.join(tmp, "busybox.tar")
        write_busybox_image(tar, IMAGE, cmd=("sh",))
        with dockyard_daemon() as d:
            side = Dockyard(d)
            side.cli("images", "import", tar)
            dy = measure(side, args)
        ct: dict = {}
        if not args.skip_containerd:
            with containerd() as ctrd:
                if ctrd is not None:
                    side = Containerd(ctrd)
                    side.cli("images", "import", tar)
                    ct = measure(side, args)
    print()

    def line(name: str, key: str, unit: str, scale: float = 1.0, ct_key: str = "") -> None:
        if key in dy:
            other = ct.get(ct_key or key)
            report(name, dy[key] * scale, None if other is None else other * scale, unit)

    line("run --rm busybox /bin/true (median)", "run_rm", "s")
    line(f"{args.count} detached starts, all running", "start_many", "s")
    line(f"{args.count} kill + delete", "teardown_many", "s")
    line("kill → /tasks/exit at a subscriber (median)", "exit_latency", "ms", 1000)
    line(f"kill -9 + restart, {args.count} listed again", "restart", "s")
    line("shim PSS per running container", "shim_pss", "MiB")
    line(f"daemon RSS with {args.count} tasks", "daemon_rss", "MiB")
    line(f"{args.count} detached starts in one shim group", "start_group", "s", ct_key="start_many")
    line("shim PSS per container, one shim group", "group_pss", "MiB", ct_key="shim_pss")
    if "victim_exits" in dy:
        print(f"exits of the task killed while the daemon was down, as published after restart: "
              f"{dy['victim_exits']} (must be 1)")

if __name__ == "__main__":
    main()
