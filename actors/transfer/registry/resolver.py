"""Resolve an image reference to the descriptor of its root manifest or index (§14).

Tags: ``HEAD /v2/<repo>/manifests/<tag>`` with the Accept list below; digest,
size and media type come from the reply headers, or from a GET of the body
(hashed here) when a header is missing.  Digest references try
``manifests/<digest>`` and then ``blobs/<digest>``.  A 404 moves on to the next
host; when every host misses, NotFound names the reference.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import attrs

from oci import mediatypes
from oci.descriptor import Descriptor
from oci.reference import Reference, parse
from wire import errdefs

from .client import RegistryClient
from .hosts import RESOLVE, RegistryHost

if TYPE_CHECKING:
    import httpx

MAX_MANIFEST_SIZE = 4 * 1024 * 1024

MANIFEST_ACCEPT = ", ".join([
    mediatypes.DOCKER_MANIFEST,
    mediatypes.DOCKER_MANIFEST_LIST,
    mediatypes.OCI_MANIFEST,
    mediatypes.OCI_INDEX,
    "*/*",
])


def pull_scope(ref: Reference) -> str:
    return f"repository:{ref.path}:pull"


def repository_query(host: RegistryHost, ref: Reference) -> dict[str, str]:
    """Mirrors learn which registry a request is for through ``?ns=<registry>``."""
    return {} if host.host == ref.domain else {"ns": ref.domain}


@attrs.define(eq=False)
class Resolver:
    client: RegistryClient

    async def resolve(self, reference: str | Reference) -> tuple[str, Descriptor]:
        """Return ``(normalized name, root descriptor)`` for ``reference``.

        Raises NotFound (no host has it), ResourceExhausted (manifest over 4 MiB),
        Unauthenticated/PermissionDenied, Unavailable (hosts unreachable).
        """
        ref = parse(reference) if isinstance(reference, str) else reference
        hosts = self.client.hosts(ref.domain, RESOLVE)
        if ref.digest:
            paths = [f"/{ref.path}/manifests/{ref.digest}", f"/{ref.path}/blobs/{ref.digest}"]
        else:
            paths = [f"/{ref.path}/manifests/{ref.tag}"]
        last_error: errdefs.DockyardError | None = None
        for host in hosts:
            for path in paths:
                try:
                    desc = await self._resolve_at(host, path, ref)
                except (errdefs.NotFound, errdefs.Unavailable, errdefs.DeadlineExceeded) as e:
                    # Like containerd, also on 5xx: distribution answers 500 for
                    # manifests/<digest> when the digest names a plain blob.
                    last_error = e
                    continue
                if desc is not None:
                    return str(ref), desc
        if last_error is None or isinstance(last_error, errdefs.NotFound):
            raise errdefs.NotFound(f"reference {str(ref)!r}: not found")
        raise last_error

    async def _resolve_at(self, host: RegistryHost, path: str, ref: Reference) -> Descriptor | None:
        common = dict(scopes=[pull_scope(ref)], headers={"Accept": MANIFEST_ACCEPT},
                      params=repository_query(host, ref), follow_redirects=True)
        try:
            response = await self.client.send(host, "HEAD", path, **common)
        except errdefs.Unknown as e:
            if "HTTP 405" not in str(e) and "HTTP 501" not in str(e):
                raise
            return await self._resolve_by_get(host, path, ref, common)  # no HEAD support
        if response.status_code == 404:
            return None
        media_type, digest, size = _from_headers(response, ref)
        if response.status_code != 200 or not (media_type and digest and size is not None):
            return await self._resolve_by_get(host, path, ref, common)
        _check_size(size, ref)
        if ref.digest and digest != ref.digest:
            raise errdefs.DataLoss(f"reference {str(ref)!r}: registry {host.host} answered digest {digest}")
        return Descriptor(media_type=media_type, digest=digest, size=size)

    async def _resolve_by_get(self, host: RegistryHost, path: str, ref: Reference,
                              common: dict) -> Descriptor | None:
        import httpx  # imported on first use (see client.py)

        response = await self.client.send(host, "GET", path, stream=True, **common)
        try:
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise errdefs.Unknown(f"reference {str(ref)!r}: registry {host.host}: "
                                      f"GET {path}: HTTP {response.status_code}")
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit():
                _check_size(int(declared), ref)
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                _check_size(len(body), ref)
        except httpx.HTTPError as e:
            raise errdefs.Unavailable(f"reference {str(ref)!r}: registry {host.host}: reading {path}: {e}") from e
        finally:
            await response.aclose()
        media_type, header_digest, _ = _from_headers(response, ref)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.digest and ref.digest.startswith("sha256:") and digest != ref.digest:
            raise errdefs.DataLoss(f"reference {str(ref)!r}: registry {host.host} sent content "
                                   f"hashing to {digest}")
        if ref.digest:
            digest = ref.digest
        if not media_type:
            media_type = _sniff_media_type(bytes(body))
        return Descriptor(media_type=media_type, digest=digest, size=len(body))


def _from_headers(response: httpx.Response, ref: Reference) -> tuple[str, str, int | None]:
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    if media_type in ("", "*/*", "text/plain", "application/octet-stream") and not ref.digest:
        media_type = ""
    digest = response.headers.get("Docker-Content-Digest", "") or ref.digest
    length = response.headers.get("Content-Length")
    size = int(length) if length is not None and length.isdigit() else None
    if size == 0:
        size = None  # HEAD replies without a length say 0 in some proxies
    return media_type, digest, size


def _check_size(size: int, ref: Reference) -> None:
    if size > MAX_MANIFEST_SIZE:
        raise errdefs.ResourceExhausted(
            f"reference {str(ref)!r}: manifest of {size} bytes exceeds the {MAX_MANIFEST_SIZE} byte limit")


def _sniff_media_type(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "application/octet-stream"
    if isinstance(doc, dict):
        if isinstance(doc.get("mediaType"), str):
            return doc["mediaType"]
        if "manifests" in doc:
            return mediatypes.OCI_INDEX
        if "config" in doc:
            return mediatypes.OCI_MANIFEST
    return "application/octet-stream"
