"""Session-wide registries for the registry client tests (one process per variant)."""

from __future__ import annotations

import pytest

from tests.registry.registry_server import (
    HTPASSWD_BINARY, TEST_USERS, TokenServer, htpasswd_file, make_server_cert, make_test_ca,
    registry_available, start_registry,
)


def _require_registry() -> None:
    if not registry_available():
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory):
    _require_registry()
    server = start_registry(tmp_path_factory.mktemp("plain-registry"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory):
    _require_registry()
    directory = tmp_path_factory.mktemp("tls-registry")
    tls = make_server_cert(directory, make_test_ca(directory))
    server = start_registry(directory / "server", tls=tls)
    yield server, tls
    server.stop()


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory):
    _require_registry()
    if HTPASSWD_BINARY is None:
        pytest.skip("htpasswd not installed (apt-get install apache2-utils)")
    directory = tmp_path_factory.mktemp("basic-registry")
    server = start_registry(directory / "server", htpasswd=htpasswd_file(directory / "htpasswd", TEST_USERS))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory):
    _require_registry()
    directory = tmp_path_factory.mktemp("token-registry")
    token_server = TokenServer(directory / "token", users=dict(TEST_USERS)).start()
    try:
        server = start_registry(directory / "server", token=token_server)
    except BaseException:
        token_server.stop()
        raise
    yield server, token_server
    server.stop()
    token_server.stop()
