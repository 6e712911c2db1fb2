import os
import shutil

import pytest

from tests.shim.harness import Shims

needs_runc = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and /bin/busybox (apt-get install busybox-static)",
)


@pytest.fixture
def shims(tmp_path):
    s = Shims(tmp_path)
    yield s
    left = s.cleanup()
    assert not left, f"left behind: {left}"
