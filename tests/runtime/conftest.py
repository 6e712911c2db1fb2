import pytest

from tests.runtime.helpers import Runtime, busybox_rootfs, needs_runc  # noqa: F401
from tests.support.daemon import Daemon


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    return busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="module")
def shared(tmp_path_factory, rootfs):
    """One daemon per test module (starting one costs ~1.5 s); checked clean at the end."""
    r = Runtime(Daemon(tmp_path_factory.mktemp("dockyard") / "d"), rootfs)
    r.daemon.start()
    try:
        yield r
    finally:
        left = r.cleanup()
        assert not left, f"left behind: {left}"


@pytest.fixture
def rt(shared):
    """The module's daemon; every task and container is removed and checked gone after each test."""
    if shared.daemon.proc is None:
        shared.daemon.start()
    yield shared
    left = shared.reset()
    assert not left, f"left behind: {left}"


@pytest.fixture
def fresh_rt(make_daemon, rootfs):
    """A daemon of the test's own (for tests that kill and restart it)."""
    r = Runtime(make_daemon("dockyard"), rootfs)
    r.daemon.start()
    try:
        yield r
    finally:
        left = r.cleanup()
        assert not left, f"left behind: {left}"
