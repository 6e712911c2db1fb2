"""Write an OCI image-layout tar (``oci-layout``, ``blobs/<alg>/<hex>``, ``index.json``).

Streaming: blobs are copied from file objects straight into the tar (the
caller gives each size from its descriptor) and verified on the way;
``index.json`` is written last, by ``close``.  The output imports with
``ctr images import`` and ``read_archive``.
"""

from __future__ import annotations

import io
import tarfile
from typing import BinaryIO

import attrs

from oci import _json, archive_names, mediatypes
from oci._digest import check_digest, sha256_of
from oci._hashing import HashingReader
from oci.descriptor import Descriptor
from oci.identity import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME
from oci.manifest import Index
from wire.errdefs import FailedPrecondition, InvalidArgument

LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class ArchiveWriter:
    """Builds one OCI image-layout tar on ``fileobj`` (written sequentially, never seeked).

    ``add_blob`` / ``add_bytes`` write content once per digest; ``add_image``
    records an ``index.json`` entry; ``close`` writes the index and ends the
    tar.  A failed write leaves the writer broken (FailedPrecondition after).
    """

    def __init__(self, fileobj: BinaryIO) -> None:
        self._tar = tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)
        self._written: set[str] = set()
        self._dirs: set[str] = set()
        self._entries: list[Descriptor] = []
        self._state = "open"
        self._guarded(self._put_file, "oci-layout", io.BytesIO(LAYOUT), len(LAYOUT))

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def has_blob(self, digest: str) -> bool:
        return digest in self._written

    def add_blob(self, desc: Descriptor, fileobj: BinaryIO) -> None:
        """Copy ``desc.size`` bytes of ``fileobj`` into ``blobs/…``, checking ``desc.digest``.

        A digest already written is skipped without reading ``fileobj``.
        """
        self._check_open()
        digest = check_digest(desc.digest, f"blob {desc.digest!r}")
        if desc.size < 0:
            raise InvalidArgument(f"blob {digest}: negative size {desc.size}")
        if digest in self._written:
            return
        algorithm, _, encoded = digest.partition(":")
        reader = HashingReader(fileobj, desc.size, algorithm=algorithm)
        self._guarded(self._put_blob, algorithm, encoded, reader, desc.size)
        if reader.digest_as(algorithm) != digest:
            self._state = "broken"
            raise InvalidArgument(f"blob {digest}: content digest is {reader.digest_as(algorithm)}")
        self._written.add(digest)

    def add_bytes(self, data: bytes, media_type: str) -> Descriptor:
        """Write a small blob held in memory; returns its descriptor."""
        desc = Descriptor(media_type=media_type, digest=sha256_of(data), size=len(data))
        self.add_blob(desc, io.BytesIO(data))
        return desc

    def add_image(self, name: str, target: Descriptor) -> None:
        """Record ``name`` → ``target`` in ``index.json`` (containerd's two name annotations)."""
        self._check_open()
        if not name:
            raise InvalidArgument("archive image: empty name")
        annotations = dict(target.annotations)
        annotations[ANNOTATION_IMAGE_NAME] = name
        annotations[ANNOTATION_REF_NAME] = archive_names.oci_ref_name(name)
        self._entries.append(attrs.evolve(target, annotations=annotations))

    def add_manifest(self, target: Descriptor) -> None:
        """Record an unnamed ``index.json`` entry (annotations kept as given)."""
        self._check_open()
        self._entries.append(target)

    def close(self) -> Descriptor:
        """Write ``index.json`` and end the tar; returns the index's descriptor."""
        self._check_open()
        data = _json.dump(Index(media_type=mediatypes.OCI_INDEX, manifests=tuple(self._entries)).to_json())
        self._guarded(self._put_file, "index.json", io.BytesIO(data), len(data))
        self._state = "closed"
        self._tar.close()
        return Descriptor(media_type=mediatypes.OCI_INDEX, digest=sha256_of(data), size=len(data))

    def abort(self) -> None:
        """Stop without writing ``index.json`` (the output is then not an image layout)."""
        if self._state != "closed":
            self._state = "closed"
            try:
                self._tar.close()
            except (OSError, tarfile.TarError):
                pass

    def _check_open(self) -> None:
        if self._state != "open":
            raise FailedPrecondition(f"archive writer is {self._state}")

    def _guarded(self, write, *args) -> None:
        try:
            write(*args)
        except (OSError, tarfile.TarError) as exc:
            self._state = "broken"
            raise InvalidArgument(f"archive: writing failed: {exc}") from None
        except BaseException:
            self._state = "broken"
            raise

    def _put_blob(self, algorithm: str, encoded: str, reader: BinaryIO, size: int) -> None:
        for directory in ("blobs", f"blobs/{algorithm}"):
            if directory not in self._dirs:
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                self._tar.addfile(info)
                self._dirs.add(directory)
        self._put_file(f"blobs/{algorithm}/{encoded}", reader, size)

    def _put_file(self, name: str, reader: BinaryIO, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = size, 0o444
        self._tar.addfile(info, reader)
