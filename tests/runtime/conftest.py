import pytest

from tests.runtime.helpers import Runtime, busybox_rootfs, needs_runc  # noqa: F401


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    return busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def rt(make_daemon, rootfs):
    """A daemon plus helpers; every task and container is removed and checked gone afterwards."""
    r = Runtime(make_daemon("dockyard"), rootfs)
    r.daemon.start()
    try:
        yield r
    finally:
        left = r.cleanup()
        assert not left, f"left behind: {left}"
