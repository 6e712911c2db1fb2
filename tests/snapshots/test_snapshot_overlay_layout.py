"""overlayfs specifics: the mount table of the reference, on-disk layout."""

import os

import pytest

from actors.mount import Mount, overlay_supports_index_option
from actors.snapshots import OverlaySnapshotter
from snapshot_helpers import needs_root, read_tree, storage_entries, write_files


@pytest.fixture
def ov(tmp_path):
    with OverlaySnapshotter(str(tmp_path / "ov")) as sn:
        yield sn


def fs(sn, name_or_id):
    return os.path.join(sn.snapshots_dir, str(name_or_id), "fs")


def ids_of(sn):
    return sorted(int(e) for e in storage_entries(sn))


def committed_chain(sn, n):
    parent = ""
    for i in range(n):
        sn.prepare(f"a{i}", parent)
        sn.commit(f"c{i}", f"a{i}")
        parent = f"c{i}"


EXTRAS = ("index=off",) if overlay_supports_index_option() else ()


def test_no_parent_is_a_bind_of_own_fs(ov):
    assert ov.prepare("a") == [Mount(type="bind", source=fs(ov, 1), options=("rw", "rbind"))]
    assert ov.view("v") == [Mount(type="bind", source=fs(ov, 2), options=("ro", "rbind"))]


def test_view_of_one_parent_binds_the_parent_read_only(ov):
    committed_chain(ov, 1)
    assert ov.view("v", "c0") == [Mount(type="bind", source=fs(ov, 1), options=("ro", "rbind"))]


def test_active_on_parents_is_overlay_nearest_first(ov):
    committed_chain(ov, 3)
    (m,) = ov.prepare("top", "c2")
    top = os.path.join(ov.snapshots_dir, "4")
    assert m == Mount(type="overlay", source="overlay", options=(
        *EXTRAS, f"workdir={top}/work", f"upperdir={top}/fs",
        f"lowerdir={fs(ov, 3)}:{fs(ov, 2)}:{fs(ov, 1)}"))


def test_view_of_two_parents_is_lowerdir_only_overlay(ov):
    committed_chain(ov, 2)
    assert ov.view("v", "c1") == [Mount(type="overlay", source="overlay", options=(
        *EXTRAS, f"lowerdir={fs(ov, 2)}:{fs(ov, 1)}"))]


def test_index_probe_matches_kernel_and_extra_options_are_appended(tmp_path):
    assert overlay_supports_index_option() == os.path.exists("/sys/module/overlay/parameters/index")
    assert overlay_supports_index_option.__wrapped__(str(tmp_path / "absent")) is False
    with OverlaySnapshotter(str(tmp_path / "o"), mount_options=["volatile"]) as sn:
        committed_chain(sn, 1)
        (m,) = sn.prepare("x", "c0")
        assert m.options[: len(EXTRAS) + 1] == (*EXTRAS, "volatile")


def test_work_dir_only_for_active_and_commit_keeps_the_id(ov):
    ov.prepare("a")
    assert os.listdir(os.path.join(ov.snapshots_dir, "1")) and os.path.isdir(
        os.path.join(ov.snapshots_dir, "1", "work"))
    ov.view("v")
    assert os.listdir(os.path.join(ov.snapshots_dir, "2")) == ["fs"]
    ov.commit("c", "a")
    assert ids_of(ov) == [1, 2]
    (m,) = ov.view("v2", "c")
    assert m.source == fs(ov, 1)


def test_fs_is_owned_like_the_parent_fs(ov):
    committed_chain(ov, 1)
    os.chown(fs(ov, 1), 1234, 5678)
    ov.prepare("child", "c0")
    st = os.stat(fs(ov, 2))
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    assert oct(st.st_mode & 0o777) == oct(0o755)


def test_remove_drops_metadata_and_cleanup_deletes(ov):
    ov.prepare("a")
    ov.remove("a")
    assert ids_of(ov) == [1]
    ov.cleanup()
    assert ids_of(ov) == []


def test_sync_remove_deletes_at_once(tmp_path):
    with OverlaySnapshotter(str(tmp_path / "s"), sync_remove=True) as sn:
        sn.prepare("a")
        sn.remove("a")
        assert storage_entries(sn) == []


@needs_root
def test_delete_through_overlay_is_a_whiteout_in_the_upper(ov, tmp_path):
    sn = ov
    mounts = sn.prepare("a")
    write_files(mounts, tmp_path, {"x": b"1", "y": b"2"})
    sn.commit("c", "a")
    write_files(sn.prepare("b", "c"), tmp_path, delete=["x"])
    st = os.lstat(os.path.join(fs(sn, 2), "x"))
    assert os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
    assert read_tree(sn.mounts("b"), tmp_path) == {"y": b"2"}
