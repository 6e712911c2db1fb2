import os
import sys

import pytest

from actors.mount import mounts_under
from actors.snapshots import NativeSnapshotter, OverlaySnapshotter

# snapshot_helpers sits beside this file; importable under any import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

BACKENDS = {"overlayfs": OverlaySnapshotter, "native": NativeSnapshotter}

@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    """The snapshotter class under test (the conformance parameter)."""
    return BACKENDS[request.param]


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "sn root")  # a space in the root path on purpose


@pytest.fixture
def sn(backend, root):
    snapshotter = backend(root)
    try:
        yield snapshotter
    finally:
        snapshotter.close()


@pytest.fixture(scope="module", autouse=True)
def no_mount_left_behind(tmp_path_factory):
    """Fails the module if any mount below this session's tmp dirs survives it."""
    yield
    base = os.path.realpath(str(tmp_path_factory.getbasetemp()))
    left = mounts_under(base)
    assert not left, f"mounts left behind: {[p.mountpoint for p in left]}"
