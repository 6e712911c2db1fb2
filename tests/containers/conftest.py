import itertools

import pytest

from tests.support.daemon import Daemon

_names = itertools.count(1)


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("dockyard") / "d").start()
    try:
        yield d
    finally:
        if d.proc is not None:
            d.stop()


@pytest.fixture
def daemon(shared_daemon):
    """The module's daemon, in a namespace of this test's own (records never collide)."""
    if shared_daemon.proc is None:
        shared_daemon.start()
    shared_daemon.namespace = f"t{next(_names)}"
    return shared_daemon
