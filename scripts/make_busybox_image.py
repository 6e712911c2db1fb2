"""Build a busybox OCI image tarball on the spot: make_busybox_image.py OUT.tar [NAME]."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.images import write_busybox_image  # noqa: E402

if __name__ == "__main__":
    name = sys.argv[2] if len(sys.argv) > 2 else "docker.io/demo/busybox:latest"
    desc = write_busybox_image(sys.argv[1], name)
    print(f"{name} -> {desc.digest} ({sys.argv[1]})")
