"""Turn HTTP failures into dockyard's typed errors, in one place.

Every message names the registry host and the request, and carries the
distribution error codes (``MANIFEST_UNKNOWN``, ...) when the body has them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from wire import errdefs

if TYPE_CHECKING:
    import httpx

BODY_EXCERPT = 200

# distribution spec error codes that say more than the status does
_CODE_KINDS: dict[str, type[errdefs.DockyardError]] = {
    "BLOB_UNKNOWN": errdefs.NotFound,
    "MANIFEST_UNKNOWN": errdefs.NotFound,
    "NAME_UNKNOWN": errdefs.NotFound,
    "BLOB_UPLOAD_UNKNOWN": errdefs.NotFound,
    "DIGEST_INVALID": errdefs.InvalidArgument,
    "SIZE_INVALID": errdefs.InvalidArgument,
    "NAME_INVALID": errdefs.InvalidArgument,
    "TAG_INVALID": errdefs.InvalidArgument,
    "MANIFEST_INVALID": errdefs.InvalidArgument,
    "MANIFEST_BLOB_UNKNOWN": errdefs.FailedPrecondition,
    "BLOB_UPLOAD_INVALID": errdefs.FailedPrecondition,
    "UNSUPPORTED": errdefs.NotImplemented_,
    "DENIED": errdefs.PermissionDenied,
    "UNAUTHORIZED": errdefs.Unauthenticated,
    "TOOMANYREQUESTS": errdefs.Unavailable,
}


def body_excerpt(body: bytes) -> str:
    text = body[:BODY_EXCERPT].decode("utf-8", "replace").strip()
    return text + ("…" if len(body) > BODY_EXCERPT else "")


def error_codes(body: bytes) -> list[str]:
    try:
        doc = json.loads(body)
        return [str(e.get("code", "")) for e in doc.get("errors", []) if isinstance(e, dict)]
    except (ValueError, AttributeError, TypeError):
        return []


def status_error(what: str, response: httpx.Response, body: bytes = b"") -> errdefs.DockyardError:
    """The typed error for an unexpected reply; ``what`` names the registry and request."""
    status = response.status_code
    detail = f"{what}: HTTP {status}"
    if body:
        detail += f": {body_excerpt(body)}"
    if status == 401:
        return errdefs.Unauthenticated(detail)
    if status == 403:
        return errdefs.PermissionDenied(detail)
    if status == 429 or status >= 500:
        return errdefs.Unavailable(detail)
    if status == 404:
        return errdefs.NotFound(detail)
    for code in error_codes(body):
        if code in _CODE_KINDS:
            return _CODE_KINDS[code](detail)
    if status == 416:
        return errdefs.OutOfRange(detail)
    return errdefs.Unknown(detail)


def transport_error(what: str, exc: BaseException) -> errdefs.DockyardError:
    """A typed error for a failure below HTTP (refused, reset, TLS, timeout)."""
    import httpx  # imported on first use (see client.py)

    if isinstance(exc, httpx.TimeoutException):
        return errdefs.DeadlineExceeded(f"{what}: timed out: {_root_cause(exc)}")
    return errdefs.Unavailable(f"{what}: unreachable: {_root_cause(exc)}")


def _root_cause(exc: BaseException) -> str:
    """The most specific message in the exception chain (httpx often wraps with none)."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 8:
        text = str(current).strip()
        if text:
            seen.append(text)
        current = current.__cause__ or current.__context__
    return seen[-1] if seen else type(exc).__name__
