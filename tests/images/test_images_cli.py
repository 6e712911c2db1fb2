"""``dockyard images …`` against a real daemon: ctr's columns and verbs."""

from __future__ import annotations

import json

import pytest

from tests.support.processes import run_with_stderr_on_a_terminal
from tests.transfer.image_builder import TestImage, docker_archive, layer, oci_archive, read_layout

NAME = "docker.io/library/t:1"


@pytest.fixture
def image():
    return TestImage([layer([("etc", "dir"), ("etc/hello", b"hi\n")]), layer([("etc/two", b"2")])])


@pytest.fixture
def archive_file(tmp_path, image):
    path = tmp_path / "image.tar"
    path.write_bytes(oci_archive({NAME: image}))
    return path


def rows(output: bytes) -> list[list[str]]:
    return [line.split() for line in output.decode().splitlines()]


def test_import_ls_check_without_unpack(daemon, image, archive_file):
    daemon.cli("images", "import", "--no-unpack", str(archive_file))
    ls = rows(daemon.cli("images", "ls").stdout)
    assert ls[0] == ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]
    total = sum(len(b) for b in image.blobs.values())
    from oci.imagecheck import format_bytes
    assert ls[1] == [NAME, image.manifest.media_type, image.manifest.digest,
                     *format_bytes(total).split(), "linux/amd64", "-"]
    assert daemon.cli("images", "ls", "-q").stdout.decode() == NAME + "\n"
    check = rows(daemon.cli("images", "check").stdout)
    assert check[0] == ["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"]
    assert check[1][:4] == [NAME, image.manifest.media_type, image.manifest.digest, "complete"]
    assert check[1][-1] == "false"


def test_check_reports_missing_blobs(daemon, image, archive_file):
    daemon.cli("images", "import", "--no-unpack", str(archive_file))
    daemon.call("Content.Delete", {"digest": image.layers[1].digest})
    check = rows(daemon.cli("images", "check").stdout)
    assert check[1][3] == "incomplete"
    report = json.loads(daemon.cli("--format", "json", "images", "check").stdout)
    assert report[0]["missing"] == [image.layers[1].digest]


def test_import_from_stdin_and_docker_save(daemon):
    image = TestImage([layer([("a", b"a")])], compress=False, docker=True)
    daemon.cli("images", "import", "--no-unpack", "--base-name", "", "-",
               input=docker_archive(["busybox:latest"], image))
    assert daemon.cli("images", "ls", "-q").stdout.decode().split() == ["docker.io/library/busybox:latest"]


def test_tag_label_rm(daemon, archive_file):
    daemon.cli("images", "import", "--no-unpack", str(archive_file))
    assert daemon.cli("images", "tag", NAME, "copy:1").stdout == b"copy:1\n"
    failed = daemon.cli("images", "tag", NAME, "copy:1", check=False)
    assert failed.returncode == 1 and b"already exists" in failed.stderr
    daemon.cli("images", "tag", "--force", NAME, "copy:1")
    assert daemon.cli("images", "label", "copy:1", "a=1", "b=2").stdout == b"a=1,b=2\n"
    assert daemon.cli("images", "label", "copy:1", "a=").stdout == b"b=2\n"
    ls = rows(daemon.cli("images", "ls").stdout)
    assert [r[0] for r in ls[1:]] == ["copy:1", NAME] and ls[1][-1] == "b=2"
    out = daemon.cli("images", "rm", "--sync", "copy:1", "nope", check=False)
    assert out.returncode == 1 and out.stdout == b"copy:1\n" and b"nope" in out.stderr
    assert daemon.cli("images", "ls", "-q").stdout.decode().split() == [NAME]


def test_export_to_file_and_stdout(daemon, image, archive_file, tmp_path):
    daemon.cli("images", "import", "--no-unpack", str(archive_file))
    out = tmp_path / "out.tar"
    daemon.cli("images", "export", str(out), NAME)
    members = read_layout(out.read_bytes())
    assert json.loads(members["index.json"])["manifests"][0]["digest"] == image.manifest.digest
    assert daemon.cli("images", "export", "-", NAME).stdout == out.read_bytes()
    failed = daemon.cli("images", "export", str(tmp_path / "x.tar"), "missing", check=False)
    assert failed.returncode == 1 and b"missing" in failed.stderr
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "x.tar.tmp").exists()


def test_import_shows_progress_on_a_terminal(daemon, image, archive_file):
    import os
    import sys
    from pathlib import Path

    env = {**os.environ, "DOCKYARD_ADDRESS": daemon.address, "DOCKYARD_NAMESPACE": daemon.namespace}
    proc, shown = run_with_stderr_on_a_terminal(
        [str(Path(sys.executable).parent / "dockyard"), "images", "import", str(archive_file)], env=env, timeout=60)
    assert proc.returncode == 0
    assert b"importing: " in shown and b"B" in shown
    for desc in image.layers:
        assert f"extracted: {desc.digest}".encode() in shown


def test_mount_rw_then_unmount_removes_snapshot_and_lease(daemon, archive_file, tmp_path):
    import os

    daemon.cli("images", "import", str(archive_file))
    target = tmp_path / "rw"
    target.mkdir()
    daemon.cli("images", "mount", "--rw", NAME, str(target))
    try:
        assert (target / "etc" / "hello").read_bytes() == b"hi\n"
        (target / "etc" / "written").write_bytes(b"w")
        info = daemon.call("Snapshots.Stat", {"key": str(target)})["info"]
        assert info["kind"] == "active"
        assert [lease["id"] for lease in daemon.call("Leases.List", {})["leases"]
                if lease["id"].startswith("mount-")]
    finally:
        daemon.cli("images", "unmount", str(target))
    assert not os.path.ismount(target)
    from wire import errdefs
    with pytest.raises(errdefs.NotFound):
        daemon.call("Snapshots.Stat", {"key": str(target)})
    assert not [lease for lease in daemon.call("Leases.List", {})["leases"] if lease["id"].startswith("mount-")]
    failed = daemon.cli("images", "mount", "missing:1", str(target), check=False)
    assert failed.returncode == 1 and b"missing:1" in failed.stderr
