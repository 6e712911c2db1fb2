"""Push blobs and manifests to one repository (distribution spec push flow).

Blobs: HEAD ``blobs/<digest>`` (present → done); with a known source
repository on the same registry, try a cross-repo mount
(``POST blobs/uploads/?mount=<digest>&from=<repo>``; 201 = mounted, 202 = the
registry opened an ordinary upload instead); else ``POST blobs/uploads/`` and
either one ``PUT <location>?digest=`` with the whole body (monolithic) or
``PATCH`` chunks with ``Content-Range`` then an empty ``PUT`` (chunked).
Manifests: ``PUT manifests/<tag|digest>`` with their media type.
Pushes go to the first host with the ``push`` capability, as containerd does.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin

import attrs
import trio

from oci.descriptor import Descriptor
from oci.reference import Reference, parse
from wire import errdefs

from .client import RegistryClient
from .hosts import PUSH, RegistryHost

if TYPE_CHECKING:
    import httpx

READ_SIZE = 1024 * 1024  # bytes read from a source per thread hop


class BlobSource(Protocol):
    """Random access to a blob's bytes (a content store reader fits); called from a thread."""

    def read_at(self, offset: int, size: int) -> bytes: ...


class PushResult(str, enum.Enum):
    EXISTS = "exists"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


@attrs.define(eq=False)
class Pusher:
    """Writes content into one repository (the reference's domain and path)."""

    client: RegistryClient
    ref: Reference

    @classmethod
    def for_reference(cls, client: RegistryClient, reference: str | Reference) -> Pusher:
        return cls(client, parse(reference, default_tag=None) if isinstance(reference, str) else reference)

    @property
    def _host(self) -> RegistryHost:
        return self.client.hosts(self.ref.domain, PUSH)[0]

    def _scopes(self, mount_from: str | None = None) -> list[str]:
        scopes = [f"repository:{self.ref.path}:pull,push"]
        if mount_from:
            scopes.append(f"repository:{mount_from}:pull")
        return scopes

    async def exists(self, desc: Descriptor) -> bool:
        """Whether the repository already has the blob ``desc``."""
        response = await self.client.send(self._host, "HEAD", f"/{self.ref.path}/blobs/{desc.digest}",
                                          scopes=self._scopes(), follow_redirects=True)
        return response.status_code == 200

    async def push_blob(self, desc: Descriptor, source: bytes | BlobSource, *,
                        mount_from: str | None = None, chunk_size: int = 0) -> PushResult:
        """Upload ``desc``'s bytes from ``source`` unless the registry has or can mount them.

        ``mount_from`` is another repository path on the same registry known to hold
        the blob; ``chunk_size`` > 0 uploads in PATCH chunks of that size.
        """
        host = self._host
        scopes = self._scopes(mount_from)
        if isinstance(source, (bytes, bytearray)) and len(source) != desc.size:
            raise errdefs.InvalidArgument(f"blob {desc.digest}: {len(source)} bytes given, descriptor says {desc.size}")
        if await self.exists(desc):
            return PushResult.EXISTS
        uploads = f"/{self.ref.path}/blobs/uploads/"
        params = {"mount": desc.digest, "from": mount_from} if mount_from else None
        response = await self.client.send(host, "POST", uploads, scopes=scopes, params=params)
        what = f"registry {host.host}: upload of {desc.digest} to {self.ref.path}"
        if response.status_code == 201 and mount_from:
            return PushResult.MOUNTED
        if response.status_code == 404:
            raise errdefs.NotFound(f"{what}: repository not found")
        if response.status_code != 202:
            raise errdefs.Unknown(f"{what}: start answered HTTP {response.status_code}")
        location = _location(response, what)
        if chunk_size > 0:
            for start in range(0, desc.size, chunk_size):
                end = min(start + chunk_size, desc.size)
                chunk = await _read(source, start, end - start)
                response = await self.client.send(
                    host, "PATCH", location, scopes=scopes, body=chunk, deadline=None,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Range": f"{start}-{end - 1}",
                             "Content-Length": str(len(chunk))})
                if response.status_code != 202:
                    raise errdefs.Unknown(f"{what}: PATCH answered HTTP {response.status_code}")
                location = _location(response, what)
            body: object = b""
        else:
            body = (lambda: _stream(source, desc.size)) if not isinstance(source, (bytes, bytearray)) \
                else bytes(source)
        response = await self.client.send(
            host, "PUT", location, scopes=scopes, params={"digest": desc.digest}, body=body,
            deadline=None, headers={"Content-Type": "application/octet-stream",
                                    "Content-Length": str(0 if chunk_size > 0 else desc.size)})
        if response.status_code != 201:
            raise errdefs.Unknown(f"{what}: PUT answered HTTP {response.status_code}")
        _check_digest(response, desc.digest, what)
        return PushResult.UPLOADED

    async def push_manifest(self, desc: Descriptor, body: bytes, tag: str | None = None) -> str:
        """PUT a manifest or index by ``tag`` (default: the reference's tag, else by digest)."""
        if len(body) != desc.size:
            raise errdefs.InvalidArgument(f"manifest {desc.digest}: {len(body)} bytes given, "
                                          f"descriptor says {desc.size}")
        host = self._host
        target = tag or self.ref.tag or desc.digest
        what = f"registry {host.host}: manifest {self.ref.path}:{target}"
        response = await self.client.send(
            host, "PUT", f"/{self.ref.path}/manifests/{target}", scopes=self._scopes(), body=body,
            headers={"Content-Type": desc.media_type})
        if response.status_code == 404:
            raise errdefs.NotFound(f"{what}: repository not found")
        if response.status_code != 201:
            raise errdefs.Unknown(f"{what}: PUT answered HTTP {response.status_code}")
        _check_digest(response, desc.digest, what)
        return response.headers.get("Docker-Content-Digest", desc.digest)


def _location(response: httpx.Response, what: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise errdefs.Unknown(f"{what}: reply has no Location")
    return urljoin(str(response.url), location)


def _check_digest(response: httpx.Response, digest: str, what: str) -> None:
    answered = response.headers.get("Docker-Content-Digest")
    if answered and answered != digest:
        raise errdefs.DataLoss(f"{what}: registry computed digest {answered}")


async def _read(source: bytes | BlobSource, offset: int, size: int) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source[offset:offset + size])
    return await trio.to_thread.run_sync(source.read_at, offset, size)


async def _stream(source: BlobSource, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, size, READ_SIZE):
        yield await _read(source, offset, min(READ_SIZE, size - offset))
