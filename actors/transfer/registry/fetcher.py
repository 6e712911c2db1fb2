"""Fetch blobs and manifests by digest as a chunked async byte stream (§14).

Order of sources: the descriptor's ``urls`` (http/https), then each pull host's
``manifests/<digest>`` (manifests and indexes) and ``blobs/<digest>``.
Redirects to blob storage are followed (httpx drops ``Authorization`` when the
origin changes).  ``offset`` resumes with ``Range: bytes=<offset>-``; a 200
reply that ignored the range has its first ``offset`` bytes skipped here.
The caller verifies the digest, or uses :func:`fetch_into` which does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import trio

from oci import mediatypes
from oci.descriptor import Descriptor
from oci.reference import Reference, parse
from wire import errdefs

from .client import RegistryClient
from .hosts import PULL
from .resolver import MANIFEST_ACCEPT, pull_scope, repository_query

if TYPE_CHECKING:
    import httpx

CHUNK_SIZE = 64 * 1024


@attrs.define(eq=False)
class BlobStream:
    """The bytes of one blob from ``offset`` on; iterate it for chunks.

    Every chunk arrives within ``read_timeout`` seconds or DeadlineExceeded is
    raised; a broken connection raises Unavailable.  ``remaining`` is how many
    bytes the descriptor says are still to come.
    """

    desc: Descriptor
    offset: int
    _response: httpx.Response | None
    _skip: int
    _read_timeout: float
    _what: str
    received: int = 0

    @property
    def remaining(self) -> int:
        return self.desc.size - self.offset - self.received

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        import httpx  # imported on first use (see client.py)

        if self._response is None:
            return
        raw = self._response.aiter_raw(CHUNK_SIZE)
        while True:
            try:
                with trio.fail_after(self._read_timeout):
                    chunk = await raw.__anext__()
            except StopAsyncIteration:
                return
            except trio.TooSlowError:
                raise errdefs.DeadlineExceeded(f"{self._what}: no data for {self._read_timeout} s") from None
            except httpx.TimeoutException as e:
                raise errdefs.DeadlineExceeded(f"{self._what}: read timed out: {e}") from e
            except httpx.HTTPError as e:
                raise errdefs.Unavailable(f"{self._what}: connection broken: {e}") from e
            if self._skip:
                drop = min(self._skip, len(chunk))
                self._skip -= drop
                chunk = chunk[drop:]
                if not chunk:
                    continue
            self.received += len(chunk)
            yield chunk


@attrs.define(eq=False)
class Fetcher:
    """Reads content of one repository (the reference's domain and path)."""

    client: RegistryClient
    ref: Reference

    @classmethod
    def for_reference(cls, client: RegistryClient, reference: str | Reference) -> Fetcher:
        return cls(client, parse(reference) if isinstance(reference, str) else reference)

    @contextlib.asynccontextmanager
    async def fetch(self, desc: Descriptor, offset: int = 0) -> AsyncIterator[BlobStream]:
        """``async with fetcher.fetch(desc, offset) as stream: async for chunk in stream``.

        Raises NotFound when no source has the blob, OutOfRange for an offset past
        its size, and the client's typed errors otherwise.
        """
        if offset < 0 or offset > desc.size:
            raise errdefs.OutOfRange(f"blob {desc.digest}: offset {offset} outside size {desc.size}")
        if offset == desc.size and desc.size > 0:
            yield BlobStream(desc, offset, None, 0, self.client.timeouts.read, f"blob {desc.digest}")
            return
        response, what = await self._open(desc, offset)
        try:
            skip = offset if (offset and response.status_code == 200) else 0
            if response.status_code == 206:
                _check_content_range(response, offset, what)
            yield BlobStream(desc, offset, response, skip, self.client.timeouts.read, what)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self.client.timeouts.connect):
                await response.aclose()

    async def _open(self, desc: Descriptor, offset: int) -> tuple[httpx.Response, str]:
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        is_manifest = mediatypes.is_manifest(desc.media_type) or mediatypes.is_index(desc.media_type)
        if is_manifest:
            headers["Accept"] = ", ".join([desc.media_type, MANIFEST_ACCEPT])
        last_error: errdefs.DockyardError | None = None
        for url in desc.urls:
            if urlsplit(url).scheme not in ("http", "https"):
                continue
            host = self.client.hosts(self.ref.domain, PULL)[0]
            foreign = attrs.evolve(host, host=urlsplit(url).netloc, headers=())
            try:
                response = await self.client.send(foreign, "GET", url, headers=headers, stream=True,
                                                  follow_redirects=True)
            except (errdefs.Unavailable, errdefs.DeadlineExceeded, errdefs.NotFound,
                    errdefs.Unauthenticated, errdefs.PermissionDenied, errdefs.Unknown) as e:
                last_error = e
                continue
            if response.status_code == 404:
                await response.aclose()
                continue
            return response, f"blob {desc.digest} from {url.split('?', 1)[0]}"
        kinds = ["manifests", "blobs"] if is_manifest else ["blobs"]
        for host in self.client.hosts(self.ref.domain, PULL):
            for kind in kinds:
                path = f"/{self.ref.path}/{kind}/{desc.digest}"
                try:
                    response = await self.client.send(
                        host, "GET", path, scopes=[pull_scope(self.ref)], headers=headers,
                        params=repository_query(host, self.ref), stream=True, follow_redirects=True)
                except (errdefs.Unavailable, errdefs.DeadlineExceeded) as e:
                    last_error = e
                    break
                if response.status_code == 404:
                    await response.aclose()
                    continue
                return response, f"blob {desc.digest} from registry {host.host}"
        if last_error is not None and not isinstance(last_error, errdefs.NotFound):
            raise last_error
        raise errdefs.NotFound(f"blob {desc.digest} in {self.ref.name}: not found")


def _check_content_range(response: httpx.Response, offset: int, what: str) -> None:
    value = response.headers.get("Content-Range", "")
    # "bytes <start>-<end>/<total>"
    start = value.removeprefix("bytes ").split("-", 1)[0]
    if value and start.isdigit() and int(start) != offset:
        raise errdefs.Unknown(f"{what}: asked for bytes from {offset}, got {value!r}")
