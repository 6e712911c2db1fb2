"""Registries for the pull/push tests: one plain registry for the session, others per test."""

from __future__ import annotations

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
