"""Import + unpack of a Debian minbase image, and export: dockyard vs containerd 1.6.

    .venv/bin/python bench/images_import.py [--runs 3]

The image is built once with ``debootstrap --variant=minbase bookworm`` from the
machine's configured Debian mirror, tarred into a one-layer gzip OCI image and
cached under /var/tmp/dockyard-bench/ (if debootstrap fails, a ~120 MB tree of
~10,000 files is generated instead).  Each run starts a fresh daemon root (and a
fresh containerd) so nothing is shared between runs; figures are medians of ``--runs``.
dockyard and containerd runs alternate (A B A B ...), each after ``sync``, so both
sides see the same machine state and no run pays for the previous one's writeback.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import containerd, dockyard_daemon, report  # noqa: E402

CACHE = Path("/var/tmp/dockyard-bench")
IMAGE_TAR = CACHE / "debian-minbase-oci.tar"
IMAGE_NAME = "docker.io/library/debian-minbase:bench"


def _mirror() -> str:
    for path in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if line.startswith("URIs:") and len(parts) > 1:
                return parts[1]
            if line.startswith("deb ") and len(parts) > 1:
                return parts[1]
    return "http://deb.debian.org/debian"


def _debootstrap(target: Path) -> bool:
    cmd = ["debootstrap", "--variant=minbase", "bookworm", str(target), _mirror()]
    print("building rootfs:", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, capture_output=True)
    if result.returncode != 0:
        print("debootstrap failed:", result.stderr.decode(errors="replace")[-800:], flush=True)
        return False
    for sub in ("proc", "sys", "dev/pts"):  # debootstrap may leave these mounted
        subprocess.run(["umount", "-l", str(target / sub)], capture_output=True)
    # as Debian's published images: no package caches or downloaded indexes
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (target / sub).glob("*"):
            if entry.is_file():
                entry.unlink()
    return True


def _synthetic(target: Path) -> None:
    """~120 MB in ~10,000 files: compressible text plus some random bytes."""
    rng = random.Random(42)
    words = [f"word{i}".encode() for i in range(500)]
    for d in range(100):
        directory = target / "usr" / "share" / f"d{d:03d}"
        directory.mkdir(parents=True)
        for f in range(100):
            size = rng.randint(2_000, 22_000)
            data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
            if f % 10 == 0:
                data += rng.randbytes(size // 2)
            (directory / f"f{f:03d}").write_bytes(data)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build_image() -> Path:
    """The cached OCI archive (built on first use)."""
    if IMAGE_TAR.exists():
        return IMAGE_TAR
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE))
    try:
        rootfs = work / "rootfs"
        if not _debootstrap(rootfs):
            shutil.rmtree(rootfs, ignore_errors=True)
            rootfs.mkdir()
            _synthetic(rootfs)
        layer_tar = work / "layer.tar"
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(layer_tar), "."],
                       check=True)
        diff_id = "sha256:" + _file_sha(layer_tar)
        subprocess.run(["gzip", "-6", "-n", str(layer_tar)], check=True)
        blob = work / "layer.tar.gz"
        layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                 "digest": "sha256:" + _file_sha(blob), "size": blob.stat().st_size}
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Cmd": ["/bin/bash"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
        config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                       "size": len(config)}
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config_desc, "layers": [layer]}).encode()
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "digest": _sha(manifest), "size": len(manifest),
                                           "annotations": {"io.containerd.image.name": IMAGE_NAME,
                                                           "org.opencontainers.image.ref.name": "bench"}}]}).encode()
        partial = IMAGE_TAR.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            def add(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            tar.add(str(blob), arcname="blobs/sha256/" + layer["digest"].split(":")[1])
            add("blobs/sha256/" + config_desc["digest"].split(":")[1], config)
            add("blobs/sha256/" + _sha(manifest).split(":")[1], manifest)
            add("index.json", index)
        os.replace(partial, IMAGE_TAR)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], capture_output=True)
    return IMAGE_TAR


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_dockyard(image: Path) -> tuple[float, float, float]:
    """(import+unpack s, export s, exported MB) on a fresh daemon root (nothing shared), after ``sync``."""
    os.sync()
    with dockyard_daemon() as d:
        imported = _timed(lambda: d.cli("images", "import", str(image), timeout=600))
        out = Path(tempfile.mkdtemp(prefix="export-")) / "out.tar"
        exported = _timed(lambda: d.cli("images", "export", str(out), IMAGE_NAME, timeout=600))
        exported_mb = out.stat().st_size / 1e6
        shutil.rmtree(out.parent, ignore_errors=True)
    return imported, exported, exported_mb


def run_containerd(image: Path) -> tuple[float, float, float] | None:
    os.sync()
    with containerd() as c:
        if c is None:
            return None
        imported = _timed(lambda: c.ctr("images", "import", "--snapshotter", "overlayfs", str(image)))
        out = Path(tempfile.mkdtemp(prefix="export-")) / "out.tar"
        exported = _timed(lambda: c.ctr("images", "export", str(out), IMAGE_NAME))
        exported_mb = out.stat().st_size / 1e6
        shutil.rmtree(out.parent, ignore_errors=True)
    return imported, exported, exported_mb


def _medians(runs: list[tuple[float, float, float]]) -> tuple[float, float, float] | None:
    if not runs:
        return None
    return _median([r[0] for r in runs]), _median([r[1] for r in runs]), runs[-1][2]


def bench_pairs(image: Path, runs: int):
    """dockyard and containerd runs alternate (A B A B ...) so both see the same machine state."""
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(run_dockyard(image))
        other = run_containerd(image)
        if other is not None:
            theirs.append(other)
    return _medians(ours), _medians(theirs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    image = build_image()
    size_mb = image.stat().st_size / 1e6
    print(f"image: {image} ({size_mb:.1f} MB)", flush=True)
    (dy_import, dy_export, dy_mb), theirs = bench_pairs(image, args.runs)
    ct_import, ct_export, ct_mb = theirs if theirs is not None else (None, None, 0.0)
    report(f"import+unpack {size_mb:.0f} MB minbase, cold (s)", dy_import, ct_import, "s")
    report("export (MB/s)", dy_mb / dy_export, (ct_mb / ct_export) if ct_export else None, "MB/s",
           lower_is_better=False)


if __name__ == "__main__":
    main()
