import os
import subprocess
import sys

import pytest

# The helpers sit beside this file; make them importable whether or not
# tests/ is a package.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diff_helpers import snapshot_outside  # noqa: E402


@pytest.fixture
def jail(tmp_path):
    """A root to extract into, next to a sentinel directory that must never change."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    os.symlink("victim", outside / "victim-link")
    before = snapshot_outside(outside)
    siblings = sorted(os.listdir(tmp_path))
    yield root, outside
    assert snapshot_outside(outside) == before, "something outside the root changed"
    assert sorted(os.listdir(tmp_path)) == siblings, "something appeared beside the root"


def pytest_sessionfinish(session, exitstatus):
    # No overlay mount of ours may outlive the run.
    mounts = subprocess.run(["mount"], capture_output=True, text=True).stdout
    assert "dockyard-diff-test" not in mounts
