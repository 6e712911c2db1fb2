"""Pull and push against a local registry: dockyard vs containerd 1.6, medians of fresh runs.

    .venv/bin/python bench/pull.py [--runs 3]

Workloads:
- pull of the Debian minbase image (``images_import.build_image``: debootstrap
  --variant=minbase, cached under /var/tmp/dockyard-bench/) with unpack
  (``images pull`` vs ``ctr images pull --plain-http``) and without
  (``images pull --no-unpack`` vs ``ctr content fetch --plain-http``);
- a 10-layer image (3 MiB of random bytes per layer): concurrent fetch
  (3 at a time) vs sequential (1 at a time), direct and through a proxy that
  limits each connection to 25 MiB/s the way a remote registry does;
- push of the minbase image into a fresh repository (``images push`` vs
  ``ctr images push --plain-http``).

Every run uses a fresh daemon root (nothing cached) and the same registry
(Debian's docker-registry on 127.0.0.1).  dockyard and ctr runs alternate
(A B A B ...) and each starts after ``sync``, so both sides see the same machine
state and no run pays for the previous run's writeback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.images_import import IMAGE_NAME, build_image  # noqa: E402
from bench.support import containerd, dockyard_daemon, report  # noqa: E402
from tests.registry.registry_server import registry_available, start_registry  # noqa: E402

LAYERS = 10
LAYER_BYTES = 3 << 20
PROXY_RATE = 25 << 20  # bytes/s per connection through the throttling proxy


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _repo(prefix: str) -> str:
    return f"bench/{prefix}-{uuid.uuid4().hex[:8]}"


# -- setup --------------------------------------------------------------------


def push_with_dockyard(registry: str, image: Path, ref: str) -> float:
    """Import the archive into a fresh daemon and time ``images push`` of it."""
    os.sync()
    with dockyard_daemon() as d:
        d.cli("images", "import", "--no-unpack", str(image), timeout=600)
        return _timed(lambda: d.cli("images", "push", "--plain-http", ref, IMAGE_NAME, timeout=600))


def push_with_ctr(image: Path, ref: str) -> float | None:
    os.sync()
    with containerd() as c:
        if c is None:
            return None
        c.ctr("images", "import", "--no-unpack", str(image))
        c.ctr("images", "tag", IMAGE_NAME, ref)
        return _timed(lambda: c.ctr("images", "push", "--plain-http", ref))


def ten_layer_archive(directory: Path) -> Path:
    """An OCI archive with LAYERS incompressible uncompressed layers (named like the minbase one)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.transfer.image_builder import TestImage, layer, oci_archive

    layers = [layer([(f"data{i}", os.urandom(LAYER_BYTES))]) for i in range(LAYERS)]
    path = directory / "ten-layers.tar"
    path.write_bytes(oci_archive({IMAGE_NAME: TestImage(layers, compress=False)}))
    return path


class ThrottlingProxy:
    """TCP proxy limiting each connection's reply bytes to ``rate`` per second (threads)."""

    def __init__(self, upstream: str, rate: int) -> None:
        self.upstream, self.rate = upstream, rate
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            host, port = self.upstream.rsplit(":", 1)
            server = socket.create_connection((host, int(port)))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, throttle: bool) -> None:
        started, sent = time.monotonic(), 0
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if throttle:
                    sent += len(data)
                    ahead = sent / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for s in self._sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# -- measurements -------------------------------------------------------------


def dockyard_pull(ref: str, *args: str) -> float:
    """One pull on a fresh daemon root, after ``sync`` so earlier writeback does not slow it."""
    os.sync()
    with dockyard_daemon() as d:
        return _timed(lambda: d.cli("images", "pull", "--plain-http", *args, ref, timeout=600))


def ctr_pull(ref: str, *command: str) -> float | None:
    os.sync()
    with containerd() as c:
        if c is None:
            return None
        return _timed(lambda: c.ctr(*command, "--plain-http", ref))


def dockyard_pulls(ref: str, runs: int, *args: str) -> float:
    return _median([dockyard_pull(ref, *args) for _ in range(runs)])


def paired_pulls(ref: str, runs: int, dockyard_args: tuple[str, ...],
                 ctr_command: tuple[str, ...]) -> tuple[float, float | None]:
    """Medians of dockyard and ctr pulls run alternately (A B A B ...): both see the same machine."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(runs):
        ours.append(dockyard_pull(ref, *dockyard_args))
        ctr_time = ctr_pull(ref, *ctr_command)
        if ctr_time is not None:
            theirs.append(ctr_time)
    return _median(ours), (_median(theirs) if theirs else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not registry_available():
        print("docker-registry not installed (apt-get install docker-registry): nothing to measure")
        return
    image = build_image()
    work = Path(tempfile.mkdtemp(prefix="pull-bench-"))
    registry = start_registry(work / "registry")
    proxy = None
    try:
        print(f"image: {image} ({image.stat().st_size / 1e6:.1f} MB); registry {registry.host}; "
              f"runs: {args.runs}", flush=True)
        minbase = f"{registry.host}/{_repo('minbase')}:bench"
        push_with_dockyard(registry.host, image, minbase)

        report("pull minbase, unpack included (s)",
               *paired_pulls(minbase, args.runs, (), ("images", "pull")), "s")
        report("pull minbase, no unpack (s)",
               *paired_pulls(minbase, args.runs, ("--no-unpack",), ("content", "fetch")), "s")

        ten = ten_layer_archive(work)
        ten_ref = f"{registry.host}/{_repo('ten')}:bench"
        push_with_dockyard(registry.host, ten, ten_ref)
        proxy = ThrottlingProxy(registry.host, PROXY_RATE)
        slow_ref = f"{proxy.host}/{ten_ref.split('/', 1)[1]}"
        for label, ref in (("local", ten_ref), (f"{PROXY_RATE >> 20} MiB/s per connection", slow_ref)):
            concurrent, ctr_time = paired_pulls(ref, args.runs, ("--no-unpack",), ("content", "fetch"))
            sequential = dockyard_pulls(ref, args.runs, "--no-unpack", "--max-concurrent-downloads", "1")
            print(f"pull {LAYERS}x{LAYER_BYTES >> 20} MiB layers, {label}: concurrent(3) {concurrent:.3f} s, "
                  f"sequential {sequential:.3f} s, speed-up {sequential / concurrent:.2f}x", flush=True)
            report(f"pull 10 layers {label}, no unpack (s)", concurrent, ctr_time, "s")

        pushes, ctr_pushes = [], []
        for _ in range(args.runs):
            pushes.append(push_with_dockyard(registry.host, image, f"{registry.host}/{_repo('push')}:bench"))
            ctr_time = push_with_ctr(image, f"{registry.host}/{_repo('ctrpush')}:bench")
            if ctr_time is not None:
                ctr_pushes.append(ctr_time)
        report("push minbase (s)", _median(pushes), _median(ctr_pushes) if ctr_pushes else None, "s")
    finally:
        if proxy is not None:
            proxy.close()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
