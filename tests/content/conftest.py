import pytest

from actors.content import LocalStore


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "io.dockyard.content.v1.content")


@pytest.fixture
def store(root):
    return LocalStore(root)
