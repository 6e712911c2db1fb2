import os

import pytest

from actors.mount import mounts_under


@pytest.fixture(scope="module", autouse=True)
def no_mount_left_behind(tmp_path_factory):
    """Fails the module if any mount below this session's tmp dirs survives it."""
    yield
    base = os.path.realpath(str(tmp_path_factory.getbasetemp()))
    left = mounts_under(base)
    assert not left, f"mounts left behind: {[p.mountpoint for p in left]}"
