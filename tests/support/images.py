"""Real image tarballs built on the spot from busybox-static (no network, no registry).

    write_busybox_image("/tmp/bb.tar", "demo/busybox:latest")

One gzip layer: /bin/busybox with its applet links, a minimal /etc, the usual
empty mount points; config Cmd ["/bin/sh"] for the host platform.  Extra layers
(files to add, paths to whiteout) can be stacked for unpack tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

from oci import mediatypes, platforms
from oci.archive_writer import ArchiveWriter
from oci.descriptor import Descriptor

BUSYBOX = "/bin/busybox"
MTIME = 1_700_000_000


def _dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, MTIME
    tar.addfile(info)


def _file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = tarfile.SYMTYPE, target, MTIME, 0o777
    tar.addfile(info)


def busybox_layer() -> bytes:
    """An uncompressed layer tar holding a working busybox userland."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run"):
            _dir(tar, d, 0o1777 if d == "tmp" else 0o755)
        with open(BUSYBOX, "rb") as fh:
            _file(tar, "bin/busybox", fh.read(), 0o755)
        for applet in applets:
            if applet != "busybox":
                _link(tar, f"bin/{applet}", "busybox")
        _file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        _file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        _file(tar, "etc/hostname", b"busybox\n")
    return buf.getvalue()


def layer_tar(files: dict[str, bytes] | None = None, whiteouts: tuple[str, ...] = ()) -> bytes:
    """A small extra layer: regular files (parents created) and `.wh.` deletions."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen = set()
        for path, data in sorted((files or {}).items()):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    _dir(tar, d)
            _file(tar, path, data)
        for path in whiteouts:
            head, _, base = path.rpartition("/")
            _file(tar, f"{head}/.wh.{base}" if head else f".wh.{base}", b"")
    return buf.getvalue()


def write_image(path: str, name: str, layers: list[bytes], *, cmd=("/bin/sh",), env=None,
                platform=None) -> Descriptor:
    """Write an OCI image-layout tar with ``layers`` (uncompressed tars, gzipped here)."""
    plat = platform or platforms.host_platform()
    diff_ids, layer_descs, blobs = [], [], []
    for raw in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        layer_descs.append({"mediaType": mediatypes.OCI_LAYER_GZIP,
                            "digest": "sha256:" + hashlib.sha256(gz).hexdigest(), "size": len(gz)})
        blobs.append(gz)
    config = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(MTIME)),
        "architecture": plat.architecture, "os": plat.os,
        **({"variant": plat.variant} if plat.variant else {}),
        "config": {"Env": list(env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
                   "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    with open(path, "wb") as out, ArchiveWriter(out) as writer:
        config_desc = writer.add_bytes(json.dumps(config).encode(), mediatypes.OCI_CONFIG)
        for desc, blob in zip(layer_descs, blobs):
            writer.add_blob(Descriptor(media_type=desc["mediaType"], digest=desc["digest"], size=desc["size"]),
                            io.BytesIO(blob))
        manifest = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                    "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_desc.digest,
                               "size": config_desc.size},
                    "layers": layer_descs}
        manifest_desc = writer.add_bytes(json.dumps(manifest).encode(), mediatypes.OCI_MANIFEST)
        writer.add_image(name, manifest_desc)
    return manifest_desc


def write_busybox_image(path: str, name: str = "docker.io/library/busybox:latest", **kw) -> Descriptor:
    if not os.path.exists(BUSYBOX):
        raise FileNotFoundError(f"{BUSYBOX} is missing: apt-get install busybox-static")
    return write_image(path, name, [busybox_layer()], **kw)
