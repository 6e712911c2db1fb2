"""Unpack through a real daemon: chain-ID snapshots, labels, exact trees on both snapshotters,
skip of unpacked layers, missing blobs, kill -9 mid-unpack, and GC of an image's snapshots."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time

import pytest

from oci.identity import chain_ids
from tests.transfer.image_builder import TestImage, chunks, layer, oci_archive
from wire import errdefs

NAME = "docker.io/library/five:1"
BUSYBOX = "/bin/busybox"


def five_layers() -> list[bytes]:
    with open(BUSYBOX, "rb") as fh:
        busybox = fh.read()
    return [
        layer([("bin", "dir"), ("etc", "dir"), ("data", "dir"), ("data/dir1", "dir"), ("opt", "dir"),
               ("opt/keep", "dir"), ("bin/busybox", busybox, "mode", 0o755), ("bin/sh", "->", "busybox"),
               ("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), ("opt/keep/file", b"keep"),
               ("data/dir1/a", b"a1"), ("data/dir1/b", b"b1")]),
        layer([("etc/config", b"v1"), ("data/old.txt", b"old"), ("data/dir2", "dir"), ("data/dir2/x", b"x"),
               ("data/link", "->", "/etc/passwd")]),
        layer([("data/old.txt", "wh"), ("etc/config", b"v2"), ("data/dir1/c", b"c3")]),
        layer([("data/dir1/.wh..wh..opq", b""), ("data/dir1/new", b"n4"), ("data/link", b"now a file")]),
        layer([("data/dir2", "wh"), ("opt/keep/file", "dir"),
               ("opt/keep/file/inner", b"i5"), ("bin/hello", "->", "busybox")]),
    ]


def expected_tree() -> dict[str, tuple]:
    with open(BUSYBOX, "rb") as fh:
        busybox = hashlib.sha256(fh.read()).hexdigest()

    def f(data: bytes, mode=0o644):
        return ("file", hashlib.sha256(data).hexdigest(), mode)

    return {
        "bin": ("dir",), "bin/busybox": ("file", busybox, 0o755), "bin/sh": ("link", "busybox"),
        "bin/hello": ("link", "busybox"),
        "etc": ("dir",), "etc/passwd": f(b"root:x:0:0::/root:/bin/sh\n"), "etc/config": f(b"v2"),
        "data": ("dir",), "data/dir1": ("dir",), "data/dir1/new": f(b"n4"), "data/link": f(b"now a file"),
        "opt": ("dir",), "opt/keep": ("dir",), "opt/keep/file": ("dir",), "opt/keep/file/inner": f(b"i5"),
    }


def tree(root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    out[rel] = ("file", hashlib.sha256(fh.read()).hexdigest(), stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("other", st.st_mode, st.st_rdev)
    return out


@pytest.fixture(scope="module")
def image() -> TestImage:
    return TestImage(five_layers())


def upload(daemon, data: bytes, lease: str | None = None, **params):
    with daemon.client(lease=lease) as c:
        return c.upload("Transfer.Import", params, chunks(data))


def snapshots(daemon, snapshotter: str) -> dict[str, dict]:
    with daemon.client() as c:
        infos = list(c.stream("Snapshots.List", {"snapshotter": snapshotter}))
    return {i["name"]: i for i in infos}


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_five_layers_unpack_to_the_exact_tree(daemon, image, snapshotter, tmp_path):
    archive = tmp_path / "five.tar"
    archive.write_bytes(oci_archive({NAME: image}))
    out = daemon.cli("images", "import", "--snapshotter", snapshotter, str(archive)).stdout.decode()
    assert out == f"unpacking {NAME} ({image.manifest.digest})...done\n"

    chain = chain_ids(image.diff_ids)
    found = snapshots(daemon, snapshotter)
    for i, cid in enumerate(chain):
        info = found[cid]
        assert info["kind"] == "committed"
        assert info["parent"] == (chain[i - 1] if i else "")
        assert info["labels"]["containerd.io/snapshot.ref"] == cid
        assert info["labels"]["containerd.io/snapshot/diff-id"] == image.diff_ids[i]
        if i:
            assert info["labels"]["containerd.io/snapshot/parent-chain-id"] == chain[i - 1]
    assert not [k for k in found if k.startswith("extract-")]
    config = daemon.call("Content.Info", {"digest": image.config.digest})["info"]["labels"]
    assert config[f"containerd.io/gc.ref.snapshot.{snapshotter}"] == chain[-1]
    for desc, diff_id in zip(image.layers, image.diff_ids):
        labels = daemon.call("Content.Info", {"digest": desc.digest})["info"]["labels"]
        assert labels["containerd.io/uncompressed"] == diff_id

    check = daemon.cli("images", "check", "--snapshotter", snapshotter).stdout.decode().splitlines()
    assert check[1].split()[3] == "complete" and check[1].split()[-1] == "true"

    target = tmp_path / "mnt"
    target.mkdir()
    assert daemon.cli("images", "mount", "--snapshotter", snapshotter, NAME, str(target)).stdout.decode().strip() \
        == str(target)
    try:
        assert tree(str(target)) == expected_tree()
    finally:
        daemon.cli("images", "unmount", "--snapshotter", snapshotter, str(target))
    assert not os.path.ismount(target) and os.listdir(target) == []
    assert str(target) not in snapshots(daemon, snapshotter)


def test_unpack_again_skips_every_layer(daemon, image):
    upload(daemon, oci_archive({NAME: image}))
    with daemon.client() as sub:
        events = sub.stream("Events.Subscribe", {"filters": ['topic=="/snapshot/prepare"',
                                                             'topic=="/transfer/progress"']})
        result = daemon.call("Transfer.Unpack", {"name": NAME})
        assert result["chain_id"] == chain_ids(image.diff_ids)[-1]
        assert result["image"]["name"] == NAME and result["image"]["target"]["digest"] == image.manifest.digest
        assert result["config"] == {"entrypoint": None, "cmd": ["/bin/sh"], "env": [], "working_dir": "",
                                    "user": ""}
        got = [next(events) for _ in range(len(image.layers))]
        events.close()
    assert [e["topic"] for e in got] == ["/transfer/progress"] * len(image.layers)
    assert {e["event"]["event"] for e in got} == {"already exists"}


def test_unpack_of_a_missing_layer_names_it(daemon, image):
    upload(daemon, oci_archive({NAME: image}), unpack=False)
    daemon.call("Content.Delete", {"digest": image.layers[2].digest})
    with pytest.raises(errdefs.NotFound, match=image.layers[2].digest):
        daemon.call("Transfer.Unpack", {"name": NAME})
    found = snapshots(daemon, "overlayfs")
    chain = chain_ids(image.diff_ids)
    assert chain[0] in found and chain[1] in found and chain[2] not in found
    assert not [k for k in found if k.startswith("extract-")]


def _big_layers(n: int) -> list[bytes]:
    files = [(f"f{i:05d}", os.urandom(64)) for i in range(3000)]
    return [layer([(f"l{j}", "dir")] + [(f"l{j}/{name}", data) for name, data in files]) for j in range(n)]


def test_kill9_during_unpack_then_unpack_again(daemon, tmp_path):
    big = TestImage(_big_layers(4))
    expires = time.time() + 6
    lease = daemon.call("Leases.Create", {"id": "unpack-lease", "labels": {
        "containerd.io/gc.expire": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}})["lease"]["id"]
    upload(daemon, oci_archive({NAME: big}), unpack=False)
    prepared = threading.Event()

    def watch():
        with daemon.client() as sub:
            for envelope in sub.stream("Events.Subscribe", {"filters": ['topic=="/snapshot/prepare"']}):
                if envelope["event"]["key"].startswith("extract-"):
                    prepared.set()
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    caller = threading.Thread(target=lambda: _call_quietly(daemon, lease), daemon=True)
    caller.start()
    assert prepared.wait(20)
    daemon.kill9()
    caller.join(10)
    daemon.start()
    stray = [k for k in snapshots(daemon, "overlayfs") if k.startswith("extract-")]
    assert stray, "the kill should have left an extract-* active snapshot"

    result = daemon.call("Transfer.Unpack", {"name": NAME})
    chain = chain_ids(big.diff_ids)
    assert result["chain_id"] == chain[-1]
    assert set(chain) <= set(snapshots(daemon, "overlayfs"))

    time.sleep(max(0.0, expires + 1.5 - time.time()))  # let the lease expire
    daemon.call("GC.Collect", {})
    left = snapshots(daemon, "overlayfs")
    assert not [k for k in left if k.startswith("extract-")]
    assert set(chain) <= set(left)


def _call_quietly(daemon, lease):
    try:
        with daemon.client(lease=lease) as c:
            c.call("Transfer.Unpack", {"name": NAME})
    except Exception:
        pass


def test_deleting_the_image_lets_gc_remove_snapshots_but_a_parent_in_use_survives(daemon, image):
    upload(daemon, oci_archive({NAME: image}))
    chain = chain_ids(image.diff_ids)
    daemon.call("Snapshots.Prepare", {"key": "container-rootfs", "parent": chain[2],
                                      "labels": {"containerd.io/gc.root": "yes"}})
    daemon.call("Images.Delete", {"name": NAME, "sync": True})
    left = snapshots(daemon, "overlayfs")
    assert set(chain[:3]) <= set(left) and not set(chain[3:]) & set(left)
    for digest in image.blobs:
        with pytest.raises(errdefs.NotFound):
            daemon.call("Content.Info", {"digest": digest})
    daemon.call("Snapshots.Remove", {"key": "container-rootfs"})
    daemon.call("GC.Collect", {})
    assert snapshots(daemon, "overlayfs") == {}
    backend = daemon.root / "io.dockyard.snapshotter.v1.overlayfs" / "snapshots"
    assert not backend.exists() or os.listdir(backend) == []
