"""Build image archives in tests: OCI layouts and docker-save tars from layer tars."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from oci import mediatypes as mt
from oci.descriptor import Descriptor, Platform


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def dump(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def layer(entries: list[tuple]) -> bytes:
    """A layer tar: (name, bytes) file, (name, bytes, "mode", 0o755) file with a mode, (name, "dir"),
    (name, "->", target) symlink, (name, "wh") whiteout of name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name = entry[0]
            if len(entry) == 3:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, entry[2]
                tar.addfile(info)
            elif entry[1] == "dir":
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif entry[1] == "wh":
                head, _, base = name.rpartition("/")
                info = tarfile.TarInfo(f"{head}/.wh.{base}" if head else f".wh.{base}")
                tar.addfile(info, io.BytesIO(b""))
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(entry[1]), entry[3] if len(entry) > 3 else 0o644
                tar.addfile(info, io.BytesIO(entry[1]))
    return buf.getvalue()


class TestImage:
    """A single-platform image in memory: blobs by digest, manifest descriptor, diff ids."""

    __test__ = False

    def __init__(self, layers: list[bytes], *, arch: str = "amd64", compress: bool = True,
                 docker: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.layers: list[Descriptor] = []
        self.diff_ids = [sha(plain) for plain in layers]
        for plain in layers:
            data = gzip.compress(plain, mtime=0) if compress else plain
            if docker:
                media_type = mt.DOCKER_LAYER_GZIP if compress else mt.DOCKER_LAYER
            else:
                media_type = mt.OCI_LAYER_GZIP if compress else mt.OCI_LAYER
            desc = Descriptor(media_type=media_type, digest=sha(data), size=len(data))
            self.layers.append(desc)
            self.blobs[desc.digest] = data
        self.config_bytes = dump({"architecture": arch, "os": "linux",
                                  "config": {"Cmd": ["/bin/sh"]},
                                  "rootfs": {"type": "layers", "diff_ids": self.diff_ids}})
        self.config = Descriptor(media_type=mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
                                 digest=sha(self.config_bytes), size=len(self.config_bytes))
        self.blobs[self.config.digest] = self.config_bytes
        manifest = {"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
                    "config": self.config.to_json(), "layers": [d.to_json() for d in self.layers]}
        self.manifest_bytes = dump(manifest)
        self.manifest = Descriptor(media_type=manifest["mediaType"], digest=sha(self.manifest_bytes),
                                   size=len(self.manifest_bytes), platform=Platform(os="linux", architecture=arch))
        self.blobs[self.manifest.digest] = self.manifest_bytes


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def oci_archive(images: dict[str, TestImage], *, skip: set[str] = frozenset(), gzip_outer: bool = False) -> bytes:
    """An OCI image layout tar with one index.json entry per name (``skip``: digests to leave out)."""
    buf = io.BytesIO()
    entries = []
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        written = set()
        for name, image in images.items():
            for digest, data in image.blobs.items():
                if digest in written or digest in skip:
                    continue
                written.add(digest)
                _add(tar, "blobs/sha256/" + digest.split(":")[1], data)
            entry = image.manifest.to_json()
            entry["annotations"] = {"io.containerd.image.name": name,
                                    "org.opencontainers.image.ref.name": name.rpartition(":")[2]}
            entries.append(entry)
        _add(tar, "index.json", dump({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}))
    data = buf.getvalue()
    return gzip.compress(data) if gzip_outer else data


def docker_archive(tags: list[str], image: TestImage) -> bytes:
    """A ``docker save`` tar of one image (uncompressed layers as ``<n>/layer.tar``)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        layer_paths = []
        for i, desc in enumerate(image.layers):
            path = f"{i:064x}/layer.tar"
            _add(tar, path, gzip.decompress(image.blobs[desc.digest]) if desc.media_type.endswith("gzip")
                 else image.blobs[desc.digest])
            layer_paths.append(path)
        config_path = image.config.digest.split(":")[1] + ".json"
        _add(tar, config_path, image.config_bytes)
        _add(tar, "manifest.json", dump([{"Config": config_path, "RepoTags": tags, "Layers": layer_paths}]))
    return buf.getvalue()


def chunks(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def read_layout(data: bytes) -> dict[str, bytes]:
    """Member name → bytes of a (small) tar."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            if member.isreg():
                out[member.name] = tar.extractfile(member).read()
    return out
