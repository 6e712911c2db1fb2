"""netns without pyroute2: pin, loopback, the caller's thread untouched, no stacked or stray mounts."""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys

import pytest

from actors.network import netns
from wire import errdefs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mounts_under(path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(str(path))]


def loopback_flags(path: str) -> int:
    from pyroute2 import NetNS

    with NetNS(path) as ns:
        (lo,) = [link for link in ns.get_links() if link.get_attr("IFLA_IFNAME") == "lo"]
        return lo["flags"]


def test_pinned_namespace_is_new_and_the_callers_thread_stays_home(tmp_path):
    path = str(tmp_path / "netns" / "a")
    home = os.readlink("/proc/thread-self/ns/net")
    netns.create(path)
    try:
        assert os.readlink("/proc/thread-self/ns/net") == home
        assert os.stat(path).st_ino != os.stat("/proc/thread-self/ns/net").st_ino
        assert loopback_flags(path) & 1  # IFF_UP
        assert sorted(mounts_under(tmp_path)) == [str(tmp_path / "netns"), path]
    finally:
        netns.remove(path)
    assert mounts_under(tmp_path) == []


def test_create_does_not_import_pyroute2(tmp_path):
    path = str(tmp_path / "netns" / "b")
    code = ("import sys; from actors.network import netns; netns.create(sys.argv[1]); netns.remove(sys.argv[1]); "
            "print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, path], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert mounts_under(tmp_path) == []


def test_a_failure_inside_the_namespace_is_typed_and_leaves_nothing(tmp_path, monkeypatch):
    def broken():
        raise OSError(19, "No such device")

    monkeypatch.setattr(netns, "_loopback_up", broken)
    path = str(tmp_path / "netns" / "c")
    with pytest.raises(errdefs.Internal) as info:
        netns.create(path)
    assert path in str(info.value)
    assert not os.path.exists(path)
    assert mounts_under(tmp_path) == []


def test_concurrent_creates_and_removes_share_one_directory_mount(tmp_path):
    directory = tmp_path / "netns"
    paths = [str(directory / f"n{i}") for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(netns.create, paths))
        assert mounts_under(tmp_path).count(str(directory)) == 1
        list(pool.map(netns.remove, paths))
    assert mounts_under(tmp_path) == []
    assert not os.listdir(directory)


def test_remove_tolerates_a_path_never_pinned(tmp_path):
    (tmp_path / "netns").mkdir()
    plain = tmp_path / "netns" / "plain"
    plain.touch()
    netns.remove(str(plain))
    assert not plain.exists()
    netns.remove(str(tmp_path / "netns" / "missing"))
    netns.remove(str(tmp_path / "nowhere" / "missing"))
