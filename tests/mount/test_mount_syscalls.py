"""Real mount(2)/umount2(2) through the helper (needs root)."""

import os

import pytest

from actors.mount import MNT_DETACH, Mount, mount_all, mounts_under, read_mountinfo, temp_mount, unmount, unmount_all
from wire.errdefs import FailedPrecondition, InvalidArgument, NotFound, NotImplemented_

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mounts")


def tmpfs(*options, target=""):
    return Mount(type="tmpfs", source="tmpfs", target=target, options=options)


def options_of(path):
    """Per-mount options of the top mount at ``path``."""
    with open("/proc/self/mountinfo") as f:
        lines = [line.split() for line in f if line.split()[4] == path]
    return set(lines[-1][5].split(","))


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "target"
    path.mkdir()
    yield str(path)
    unmount_all(str(path), MNT_DETACH)  # only acts if a test failed midway


def test_bind_read_only_with_flags_is_remounted(tmp_path, target):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    mount_all([Mount(type="bind", source=str(src), options=["ro", "rbind", "nosuid", "nodev"])], target)
    try:
        assert {"ro", "nosuid", "nodev"} <= options_of(target)
        assert open(os.path.join(target, "f")).read() == "x"
        with pytest.raises(OSError):
            open(os.path.join(target, "g"), "w")
    finally:
        unmount(target)
    assert not mounts_under(target)


def test_data_options_reach_the_filesystem(target):
    mount_all([tmpfs("size=1m", "mode=0711")], target)
    try:
        assert oct(os.stat(target).st_mode & 0o777) == oct(0o711)
        assert os.statvfs(target).f_blocks * os.statvfs(target).f_frsize == 1 << 20
    finally:
        unmount(target)


def test_mount_all_with_subtargets_and_unmount_all_innermost_first(target):
    mount_all([tmpfs()], target)
    os.mkdir(os.path.join(target, "in"))
    mount_all([tmpfs(target="in"), tmpfs(target="/in")], target)  # stacked at in/
    os.mkdir(os.path.join(target, "in", "deeper"))
    mount_all([tmpfs(target="in/deeper")], target)
    assert len(mounts_under(target)) == 4
    unmount_all(target)
    assert mounts_under(target) == []
    unmount_all(target)  # nothing mounted: fine
    unmount_all(target + "/missing")


def test_failed_mount_all_undoes_the_mounts_it_made(target):
    before = len(read_mountinfo())
    with pytest.raises(NotFound) as raised:
        mount_all([tmpfs(), Mount(type="bind", source="/no/such/dir", target="", options=["bind"])], target)
    assert target in str(raised.value) and "No such file" in str(raised.value)
    assert len(read_mountinfo()) == before


def test_errors_are_typed_and_name_the_target(tmp_path, target):
    with pytest.raises(InvalidArgument, match="target"):
        unmount(target)  # not a mount point
    with pytest.raises(NotFound, match="nowhere"):
        unmount(str(tmp_path / "nowhere"))
    with pytest.raises(InvalidArgument, match="below"):
        mount_all([tmpfs(target="../escape")], target)
    with pytest.raises(NotImplemented_, match="nosuchfs.*No such device"):
        mount_all([Mount(type="nosuchfs", source="x")], target)


def test_temp_mount_unmounts_and_removes_even_on_error(tmp_path):
    holder = tmp_path / "holder"
    holder.mkdir()
    with pytest.raises(RuntimeError):
        with temp_mount([tmpfs()], parent_dir=str(holder)) as root:
            assert mounts_under(root)
            open(os.path.join(root, "file"), "w").close()
            raise RuntimeError("boom")
    assert os.listdir(holder) == []
    assert mounts_under(str(holder)) == []


def test_busy_unmount_is_failed_precondition_and_temp_mount_detaches(tmp_path, monkeypatch):
    monkeypatch.setattr("actors.mount.mounter.UNMOUNT_BUSY_RETRIES", 2)
    monkeypatch.setattr("actors.mount.mounter.UNMOUNT_BUSY_PAUSE", 0.0)
    monkeypatch.chdir(tmp_path)  # restores the original cwd at teardown
    holder = tmp_path / "holder"
    holder.mkdir()
    busy = None
    try:
        with pytest.raises(FailedPrecondition, match="busy"):
            with temp_mount([tmpfs()], parent_dir=str(holder)) as root:
                busy = os.open(root, os.O_RDONLY)
                os.fchdir(busy)  # a cwd inside keeps the mount busy
        assert mounts_under(str(holder)) == []  # detached lazily
        assert os.listdir(holder) == []
    finally:
        os.chdir(str(tmp_path))
        if busy is not None:
            os.close(busy)
