import os
import sys

import pytest

from actors.content import LocalStore

# content_helpers sits beside this file; make it importable under any
# pytest import mode (prepend or importlib, tests/ a package or not).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "io.dockyard.content.v1.content")


@pytest.fixture
def store(root):
    return LocalStore(root)
