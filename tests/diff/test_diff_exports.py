"""The package's public names are exactly what __init__ exports, and they work."""

import inspect
import io
import os
import tarfile

import actors.diff as diff
from actors.diff import MEDIA_TYPE_TAR, apply_layer

from diff_helpers import f, sha, tar_bytes


def test_all_names_exist_and_functions_are_plain_sync():
    assert sorted(diff.__all__) == sorted(set(diff.__all__))
    for name in diff.__all__:
        obj = getattr(diff, name)
        assert not inspect.iscoroutinefunction(obj), name
    assert {"apply_layer", "compare", "compare_overlay_upper", "ApplyResult", "CompareResult"} <= set(diff.__all__)


def test_diff_package_does_not_import_trio():
    import subprocess
    import sys
    code = "import sys, actors.diff; print('trio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_gnu_and_ustar_long_names(tmp_path):
    long_dir = "/".join(["segment%02d" % i for i in range(12)])
    for fmt in (tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT):
        root = tmp_path / str(fmt)
        root.mkdir()
        name = f"{long_dir}/{'n' * 90}"
        layer = tar_bytes([f(name, b"long")], fmt=fmt)
        assert apply_layer(io.BytesIO(layer), root, media_type=MEDIA_TYPE_TAR).digest == sha(layer)
        assert (root / name).read_bytes() == b"long"
        assert os.path.isdir(root / long_dir)
