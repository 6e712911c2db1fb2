"""Shared pieces of the pull/push tests: images with a real busybox, RPC shorthands, a stalling proxy."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import socket
import threading
import time

from oci import mediatypes as mt
from oci.descriptor import Descriptor, Platform
from tests.transfer.image_builder import TestImage, chunks, dump, layer, oci_archive, sha

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
_REQUEST_LINE = re.compile(rb"(?:GET|HEAD|PUT|POST|PATCH) /\S+")


def busybox_layer(unique: bytes = b"") -> bytes:
    """A layer with a static busybox as /bin/sh and /bin/busybox (``unique`` makes its digest differ)."""
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    return layer([("bin", "dir"), ("bin/busybox", binary, "mode", 0o755), ("bin/sh", "->", "busybox"),
                  ("etc", "dir"), ("etc/hostname", b"dockyard " + unique + b"\n")])


def busybox_image(extra: bytes = b"", arch: str = "amd64") -> TestImage:
    """A two-layer image, every blob unique to ``extra``: busybox, then a small layer."""
    return TestImage([busybox_layer(extra), layer([("etc/release", b"test " + extra + b"\n")])], arch=arch)


def random_image(size: int, layers: int = 1, seed: bytes = b"") -> TestImage:
    """Incompressible layers of ``size`` bytes each (stored uncompressed so the blob is that big)."""
    blobs = [layer([(f"data{i}", os.urandom(size))]) for i in range(layers)]
    if seed:
        blobs.append(layer([("seed", seed)]))
    return TestImage(blobs, compress=False)


class MultiPlatform:
    """An OCI index over one TestImage per architecture."""

    def __init__(self, images: dict[str, TestImage]) -> None:
        self.images = images
        self.blobs: dict[str, bytes] = {}
        entries = []
        for arch, image in images.items():
            self.blobs.update(image.blobs)
            entries.append(image.manifest.to_json())
        self.index_bytes = dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries})
        self.index = Descriptor(media_type=mt.OCI_INDEX, digest=sha(self.index_bytes), size=len(self.index_bytes))
        self.blobs[self.index.digest] = self.index_bytes


def import_image(daemon, name: str, image: TestImage, namespace: str | None = None) -> None:
    meta = {"namespace": namespace} if namespace else {}
    with daemon.client() as c:
        c.upload("Transfer.Import", {"unpack": False}, chunks(oci_archive({name: image})), **meta)


def push_blobs_direct(registry_host: str, repo: str, blobs: dict[str, bytes], manifests: list[tuple], tag: str):
    """Push raw blobs and manifests with the registry client from a private trio run (test setup)."""
    import trio

    from actors.transfer.registry import HostsConfig, Pusher, RegistryClient

    async def main():
        async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
            pusher = Pusher.for_reference(client, f"{registry_host}/{repo}:{tag}")
            for digest, data in blobs.items():
                if any(digest == d.digest for d, _ in manifests):
                    continue
                await pusher.push_blob(Descriptor(media_type="application/octet-stream", digest=digest,
                                                  size=len(data)), data)
            for i, (desc, data) in enumerate(manifests):
                await pusher.push_manifest(desc, data, tag=tag if i == len(manifests) - 1 else desc.digest)

    trio.run(main)


def pull(daemon, ref: str, *, namespace: str | None = None, **params):
    """Transfer.Pull; returns (result, progress items)."""
    return call_streaming(daemon, "Transfer.Pull", {"ref": ref, "plain_http": True, **params}, namespace)


def push(daemon, ref: str, *, namespace: str | None = None, **params):
    return call_streaming(daemon, "Transfer.Push", {"ref": ref, "plain_http": True, **params}, namespace)


def call_streaming(daemon, method: str, params: dict, namespace: str | None = None):
    meta = {"namespace": namespace} if namespace else {}
    with daemon.client() as c, c.stream(method, params, **meta) as stream:
        items = list(stream)
        return stream.result, items


def layer_blob_path(registry_root, digest: str):
    hexpart = digest.split(":")[1]
    return registry_root / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexpart[:2] / hexpart / "data"


class StallingProxy:
    """A TCP proxy to ``upstream`` that can stop forwarding replies after N bytes on a connection.

    ``stall_after``: once a connection has carried that many reply bytes, its
    forwarding waits until ``release()`` or ``cut()``.  ``cut()`` drops every
    connection at once, as a registry dying would.  Threads only; ``close()``
    always.
    """

    def __init__(self, upstream: str, stall_after: int | None = None) -> None:
        self.upstream = upstream
        self.stall_after = stall_after
        self.stalled = threading.Event()  # set when some connection is held
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._closed = False
        self.requests: list[str] = []  # "GET /v2/…" lines seen, in order
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                host, port = self.upstream.rsplit(":", 1)
                server = socket.create_connection((host, int(port)), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, replies: bool) -> None:
        carried = 0
        try:
            while True:
                data = src.recv(16384)
                if not data:
                    break
                if not replies:
                    for match in _REQUEST_LINE.finditer(data):
                        self.requests.append(match.group(0).decode(errors="replace"))
                if replies and self.stall_after is not None and carried + len(data) > self.stall_after:
                    keep = max(0, self.stall_after - carried)
                    if keep:
                        dst.sendall(data[:keep])
                    carried += keep
                    data = data[keep:]
                    self.stalled.set()
                    while not self._release.wait(0.05):
                        if self._closed:
                            return
                dst.sendall(data)
                carried += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def release(self) -> None:
        self.stall_after = None
        self._release.set()

    def cut(self) -> None:
        """Reset every connection (RST), as if the registry died."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked on it; close alone would not
            except OSError:
                pass
            s.close()
        self.stalled.clear()

    def close(self) -> None:
        self._closed = True
        self._release.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        except OSError:
            pass
        self._listener.close()
        self.cut()
        self._thread.join(5)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not reached")


def watch_progress(daemon, predicate):
    """Watch ``/transfer/progress`` events in a thread; returns (thread, event set once ``predicate(env)``).

    The watcher is subscribed before this returns (a marker event proves it).
    """
    subscribed = threading.Event()
    matched = threading.Event()
    marker = f"marker-{os.urandom(4).hex()}"

    def watch():
        with daemon.client(timeout=None) as c:
            for envelope in c.stream("Events.Subscribe", {"filters": ['topic=="/transfer/progress"']}):
                if envelope["event"].get("event") == marker:
                    subscribed.set()
                elif predicate(envelope):
                    matched.set()
                    return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    while not subscribed.is_set():
        daemon.call("Events.Publish", {"topic": "/transfer/progress", "event": {"event": marker}})
        subscribed.wait(0.05)
    return thread, matched


def in_thread(fn, *args, **kw):
    """Run ``fn`` in a thread; returns (thread, box) where box gets "result" or "error"."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn(*args, **kw)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box
