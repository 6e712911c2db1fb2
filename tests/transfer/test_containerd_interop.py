"""Archives cross over: dockyard's export imports, unpacks and runs on containerd 1.6, and
containerd's export imports into dockyard byte for byte."""

from __future__ import annotations

import shutil

import pytest

from tests.transfer.image_builder import TestImage, chunks, layer, oci_archive

pytestmark = pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None,
                                reason="containerd/ctr not installed")

NAME = "docker.io/library/interop:1"


@pytest.fixture
def containerd(tmp_path):
    from bench.support import Containerd

    base = tmp_path / "ctd"
    base.mkdir()
    c = Containerd(base).start()
    try:
        yield c
    finally:
        c.ctr("tasks", "kill", "-s", "KILL", "interop", check=False)
        c.stop()


@pytest.fixture
def image() -> TestImage:
    with open("/bin/busybox", "rb") as fh:
        busybox = fh.read()
    return TestImage([
        layer([("bin", "dir"), ("bin/busybox", busybox, "mode", 0o755), ("etc", "dir"), ("etc/config", b"v1")]),
        layer([("etc/config", b"v2\n")]),
    ])


def test_dockyard_export_imports_unpacks_and_runs_on_containerd(daemon, containerd, image, tmp_path):
    with daemon.client() as c:
        c.upload("Transfer.Import", {"unpack": False}, chunks(oci_archive({NAME: image})))
    out = tmp_path / "export.tar"
    daemon.cli("images", "export", str(out), NAME)
    imported = containerd.ctr("images", "import", str(out)).stdout.decode()
    assert NAME in imported
    check = containerd.ctr("images", "check").stdout.decode().splitlines()
    assert "complete" in check[1] and check[1].split()[-1] == "true"
    run = containerd.ctr("run", "--rm", NAME, "interop", "/bin/busybox", "cat", "/etc/config")
    assert run.stdout == b"v2\n"


def test_containerd_export_imports_into_dockyard(daemon, containerd, image, tmp_path):
    src = tmp_path / "src.tar"
    src.write_bytes(oci_archive({NAME: image}))
    containerd.ctr("images", "import", "--no-unpack", str(src))
    exported = tmp_path / "ctr-export.tar"
    containerd.ctr("images", "export", str(exported), NAME)
    daemon.cli("images", "import", "--no-unpack", str(exported))
    got = daemon.call("Images.Get", {"name": NAME})["image"]
    assert got["target"]["digest"] == image.manifest.digest
    for digest, data in image.blobs.items():
        assert daemon.call("Content.Info", {"digest": digest})["info"]["size"] == len(data)
