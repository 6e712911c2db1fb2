"""Registries for the pull/push tests: one plain registry for the session, others per test."""

from __future__ import annotations

import copy
import uuid

import pytest

from tests.registry.registry_server import registry_available, start_registry


def require_registry() -> None:
    if not registry_available():
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A plain-HTTP registry shared by the tests (each test uses its own repositories)."""
    require_registry()
    server = start_registry(tmp_path_factory.mktemp("pull-registry"))
    yield server
    server.stop()


@pytest.fixture
def own_registry(tmp_path):
    """A registry this test may kill, corrupt and restart; always stopped."""
    require_registry()
    servers = []

    def start(**kw):
        server = start_registry(tmp_path / "own-registry", **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def _shared_daemons(tmp_path_factory):
    """Two daemons for the whole session (starting one costs about a second)."""
    from tests.support.daemon import Daemon

    made = {}
    try:
        for name in ("pusher", "puller"):
            made[name] = Daemon(tmp_path_factory.mktemp(f"shared-{name}")).start()
        yield made
    finally:
        for d in made.values():
            if d.proc is not None:
                d.stop()


def _view(daemon):
    """The shared daemon seen from a namespace of this test's own."""
    view = copy.copy(daemon)
    view.namespace = f"t-{uuid.uuid4().hex[:10]}"
    return view


@pytest.fixture
def pusher(_shared_daemons):
    return _view(_shared_daemons["pusher"])


@pytest.fixture
def puller(_shared_daemons):
    return _view(_shared_daemons["puller"])
