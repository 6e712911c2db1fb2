"""Builders for image archives used by the archive tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from oci import mediatypes as mt
from oci._json import dump
from oci.descriptor import Descriptor


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def tar_of(members: list[tuple]) -> bytes:
    """Members: (name, bytes) for files, (name, "->", target) for symlinks, (name, "dir")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 3:
                info.type, info.linkname = tarfile.SYMTYPE, member[2]
                tar.addfile(info)
            elif member[1] == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buf.getvalue()


class Image:
    """One single-platform OCI image held in memory: blobs by digest plus its manifest descriptor."""

    def __init__(self, arch: str, files: dict[str, bytes], *, compress: bool = True):
        plain = layer_tar(files)
        data = gz(plain) if compress else plain
        self.layer = Descriptor(media_type=mt.OCI_LAYER_GZIP if compress else mt.OCI_LAYER,
                                digest=sha(data), size=len(data))
        config = dump({"architecture": arch, "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": [sha(plain)]}})
        self.config = Descriptor(media_type=mt.OCI_CONFIG, digest=sha(config), size=len(config))
        manifest = dump({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                         "config": self.config.to_json(), "layers": [self.layer.to_json()]})
        self.manifest = Descriptor(media_type=mt.OCI_MANIFEST, digest=sha(manifest), size=len(manifest))
        self.blobs = {self.layer.digest: data, self.config.digest: config, self.manifest.digest: manifest}


class ReadOnly:
    """A stream with nothing but read(): proves the reader never seeks."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(n)


class WriteOnly:
    def __init__(self):
        self.buf = io.BytesIO()

    def write(self, data) -> int:
        return self.buf.write(data)


class Collector:
    """An on_blob callback that reads in small chunks, like a content writer would."""

    def __init__(self, chunk: int = 4096):
        self.blobs: dict[str, bytes] = {}
        self.sizes: dict[str, int] = {}
        self.chunk = chunk

    def __call__(self, key: str, size: int, fileobj) -> None:
        parts = []
        while chunk := fileobj.read(self.chunk):
            parts.append(chunk)
        self.blobs[key] = b"".join(parts)
        self.sizes[key] = size


def index_json(entries: list[dict]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}).encode()
