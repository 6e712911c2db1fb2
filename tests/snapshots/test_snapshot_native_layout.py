"""native specifics: full copies, parent-bound views, immediate removal."""

import os

import pytest

from actors.mount import Mount
from actors.snapshots import NativeSnapshotter
from snapshot_helpers import storage_entries


@pytest.fixture
def nat(tmp_path):
    with NativeSnapshotter(str(tmp_path / "nat")) as sn:
        yield sn


def d(sn, id_):
    return os.path.join(sn.snapshots_dir, str(id_))


def test_active_is_a_full_independent_copy_of_the_parent(nat):
    (m,) = nat.prepare("a")
    assert m == Mount(type="bind", source=d(nat, 1), options=("rw", "rbind"))
    with open(os.path.join(d(nat, 1), "f"), "wb") as f:
        f.write(b"base")
    os.link(os.path.join(d(nat, 1), "f"), os.path.join(d(nat, 1), "hard"))
    os.symlink("f", os.path.join(d(nat, 1), "sym"))
    nat.commit("c", "a")
    (m,) = nat.prepare("b", "c")
    assert m == Mount(type="bind", source=d(nat, 2), options=("rw", "rbind"))
    child = d(nat, 2)
    assert open(os.path.join(child, "f"), "rb").read() == b"base"
    assert os.path.samefile(os.path.join(child, "f"), os.path.join(child, "hard"))
    assert not os.path.samefile(os.path.join(child, "f"), os.path.join(d(nat, 1), "f"))
    assert os.readlink(os.path.join(child, "sym")) == "f"
    with open(os.path.join(child, "f"), "wb") as f:
        f.write(b"changed")
    assert open(os.path.join(d(nat, 1), "f"), "rb").read() == b"base"


def test_view_with_parent_binds_parent_read_only_without_storage(nat):
    nat.prepare("a")
    nat.commit("c", "a")
    assert nat.view("v", "c") == [Mount(type="bind", source=d(nat, 1), options=("ro", "rbind"))]
    assert storage_entries(nat) == ["1"]
    nat.remove("v")
    assert storage_entries(nat) == ["1"]


def test_view_without_parent_is_an_empty_read_only_dir(nat):
    assert nat.view("v") == [Mount(type="bind", source=d(nat, 1), options=("ro", "rbind"))]
    assert os.listdir(d(nat, 1)) == []
    assert oct(os.stat(d(nat, 1)).st_mode & 0o777) == oct(0o755)


def test_remove_deletes_storage_at_once(nat):
    nat.prepare("a")
    nat.commit("c", "a")
    nat.prepare("b", "c")
    nat.remove("b")
    assert storage_entries(nat) == ["1"]
