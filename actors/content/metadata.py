"""NamespacedContent: what clients see of the content store (reference §4.2).

Blobs are shared bytes in the backend ``LocalStore``; visibility, labels and
ingests live per namespace in meta.db:

    content (namespace, digest, size, labels, created_at, updated_at)
    ingests (namespace, ref, backend_ref, expected, expire_at)

A blob exists for a namespace only while its record does.  An ingest record
maps the client's ref to a backend ref ``<ns>/<seq>/<ref>``, so two namespaces
never share (or lock each other out of) an ingest.  Under the ``shared`` policy
a writer for a digest the backend already holds with the right size writes no
bytes: its ingest record carries ``expected`` and commit only adds the record.

Ordering that keeps GC honest: meta.db names a backend object before it appears
on disk (the ingest record exists before the backend writer opens, and its
``expected`` is set to the digest before the data is renamed into ``blobs/``),
so a collector that lists backend objects before reading meta.db never removes
a blob being committed.  Records are written after the backend commit: a crash
in between leaves an orphan blob (collected), never a record without bytes.

All methods are async; disk work runs in worker threads, transactions are short
and never await.  Events are published after their transaction committed.
"""

from __future__ import annotations

from typing import Any, BinaryIO

import attrs
import trio

from actors.metadata import leases as lease_records
from actors.metadata.db import MetadataDB, dump_labels, load_labels, now_ns
from wire import errdefs, filters, identifiers
from wire.events import (
    TOPIC_CONTENT_CREATE, TOPIC_CONTENT_DELETE, ContentCreate, ContentDelete,
)

from .ingest import validate_ref
from .local import LocalStore
from .namespaced_writer import ContentWriter, client_ref, copy_source
from .reader import ReaderAt
from .records import IngestStatus

INGEST_EXPIRY_NS = 24 * 3600 * 1_000_000_000  # an unleased ingest is collectable after this
SHAREABLE_LABEL = "containerd.io/namespace.shareable"
SHARED, ISOLATED = "shared", "isolated"


@attrs.frozen(kw_only=True)
class ContentInfo:
    """A blob as one namespace sees it.  Times are int nanoseconds."""

    digest: str
    size: int
    created_at: int
    updated_at: int
    labels: dict[str, str] = attrs.Factory(dict)


def _info(row) -> ContentInfo:
    return ContentInfo(digest=row["digest"], size=row["size"], created_at=row["created_at"],
                       updated_at=row["updated_at"], labels=load_labels(row["labels"]))


def _adaptor(info: ContentInfo) -> filters.MappingAdaptor:
    # containerd's content fields: digest and labels (size is not filterable).
    return filters.MappingAdaptor({"digest": info.digest, "labels": info.labels})


def backend_ref(namespace: str, seq: int, ref: str) -> str:
    return f"{namespace}/{seq}/{ref}"


def apply_label_paths(current: dict[str, str], labels: dict[str, str],
                      fieldpaths: list[str] | None, what: str) -> dict[str, str]:
    """containerd's label update rule: no paths replace all labels; ``labels`` replaces
    all; ``labels.<k>`` sets one key (to "" = delete); anything else is InvalidArgument."""
    if not fieldpaths:
        updated = dict(labels)
    else:
        updated = dict(current)
        for path in fieldpaths:
            if path == "labels":
                updated = dict(labels)
            elif path.startswith("labels.") and len(path) > len("labels."):
                key = path[len("labels."):]
                updated[key] = labels.get(key, "")
            else:
                raise errdefs.InvalidArgument(f"cannot update {path!r} field on {what}")
    updated = {k: v for k, v in updated.items() if v != ""}
    identifiers.validate_labels(updated)
    return updated


class NamespacedContent:
    """The content store clients use: namespaced records over the shared backend."""

    def __init__(self, *, db: MetadataDB, backend: LocalStore, events: Any,
                 sharing_policy: str = SHARED) -> None:
        if sharing_policy not in (SHARED, ISOLATED):
            raise errdefs.InvalidArgument(f"content sharing policy {sharing_policy!r}: use shared or isolated")
        self.db = db
        self.backend = backend
        self.events = events
        self.sharing_policy = sharing_policy

    # -- blobs ---------------------------------------------------------------

    async def info(self, namespace: str, digest: str) -> ContentInfo:
        digest = identifiers.validate_digest(digest)
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM content WHERE namespace = ? AND digest = ?",
                               (namespace, digest)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"content {digest}: not found")
        return _info(row)

    async def update(self, namespace: str, digest: str, labels: dict[str, str] | None,
                     fieldpaths: list[str] | None = None) -> ContentInfo:
        digest = identifiers.validate_digest(digest)
        identifiers.validate_labels(labels)
        with self.db.write() as tx:
            row = tx.execute("SELECT * FROM content WHERE namespace = ? AND digest = ?",
                             (namespace, digest)).fetchone()
            if row is None:
                raise errdefs.NotFound(f"content {digest}: not found")
            updated = apply_label_paths(load_labels(row["labels"]), labels or {}, fieldpaths,
                                        f"content info {digest}")
            now = now_ns()
            tx.execute("UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?",
                       (dump_labels(updated), now, namespace, digest))
        return ContentInfo(digest=digest, size=row["size"], created_at=row["created_at"],
                           updated_at=now, labels=updated)

    async def list(self, namespace: str, filters_: list[str] | tuple[str, ...] = ()) -> list[ContentInfo]:
        flt = filters.parse_any(list(filters_))
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM content WHERE namespace = ? ORDER BY digest",
                                (namespace,)).fetchall()
        infos = [_info(r) for r in rows]
        return [i for i in infos if flt.match(_adaptor(i))]

    async def delete(self, namespace: str, digest: str, *, lease: str | None = None) -> None:
        """Drop the record (the bytes stay until GC finds no namespace using them)."""
        digest = identifiers.validate_digest(digest)
        with self.db.write() as tx:
            cur = tx.execute("DELETE FROM content WHERE namespace = ? AND digest = ?", (namespace, digest))
            if cur.rowcount == 0:
                raise errdefs.NotFound(f"content {digest}: not found")
            if lease:
                tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
                           (namespace, lease, lease_records.CONTENT, digest))
            tx.mark_deleted()
        self.events.publish(namespace, TOPIC_CONTENT_DELETE, ContentDelete(digest=digest))

    async def reader(self, namespace: str, digest: str) -> ReaderAt:
        """A reader opened once: it keeps reading whole bytes even if the blob is deleted."""
        await self.info(namespace, digest)
        return await trio.to_thread.run_sync(self.backend.reader, digest)

    # -- ingests -------------------------------------------------------------

    async def writer(self, namespace: str, ref: str, *, total: int | None = None,
                     expected: str | None = None, lease: str | None = None) -> ContentWriter:
        """Open (or resume) the ingest ``ref``.

        AlreadyExists when ``expected`` is already committed in this namespace
        (it still joins ``lease``); Unavailable while another writer holds ref.
        """
        validate_ref(ref)
        if total is not None and (not isinstance(total, int) or total < 0):
            raise errdefs.InvalidArgument(f"ref {ref!r}: total {total!r} must be a non-negative int")
        expected = identifiers.validate_digest(expected) if expected else None
        shared_size = await trio.to_thread.run_sync(self._shared_size, expected, total)
        now = now_ns()
        with self.db.write() as tx:
            tx.ensure_namespace(namespace)
            if expected is not None and tx.execute(
                    "SELECT 1 FROM content WHERE namespace = ? AND digest = ?", (namespace, expected)).fetchone():
                lease_records.add_to_lease(tx, namespace, lease, lease_records.CONTENT, expected)
                exists = True
            else:
                exists = False
                if shared_size is not None and self.sharing_policy == ISOLATED and not self._shareable(tx, expected):
                    shared_size = None
                row = tx.execute("SELECT backend_ref, expected FROM ingests WHERE namespace = ? AND ref = ?",
                                 (namespace, ref)).fetchone()
                if row is None:
                    bref = backend_ref(namespace, tx.next_sequence(f"ingests/{namespace}"), ref)
                    tx.execute("INSERT INTO ingests (namespace, ref, backend_ref, expected, expire_at) "
                               "VALUES (?, ?, ?, '', 0)", (namespace, ref, bref))
                else:
                    bref = row["backend_ref"]
                if lease:
                    lease_records.add_to_lease(tx, namespace, lease, lease_records.INGESTS, ref)
                else:
                    tx.execute("UPDATE ingests SET expire_at = ? WHERE namespace = ? AND ref = ?",
                               (now + INGEST_EXPIRY_NS, namespace, ref))
                if shared_size is not None:
                    tx.execute("UPDATE ingests SET expected = ? WHERE namespace = ? AND ref = ?",
                               (expected, namespace, ref))
        if exists:
            raise errdefs.AlreadyExists(f"content {expected}: already exists")
        if shared_size is not None:
            return ContentWriter(store=self, namespace=namespace, ref=ref, bref=bref, lease=lease,
                                 total=shared_size, expected=expected, started_at=now)
        with client_ref(bref, ref):
            backend = await trio.to_thread.run_sync(
                lambda: self.backend.writer(bref, total=total, expected=None))
        return ContentWriter(store=self, namespace=namespace, ref=ref, bref=bref, lease=lease,
                             total=total, expected=expected, started_at=now, backend=backend)

    def _shared_size(self, expected: str | None, total: int | None) -> int | None:
        """Size of the backend blob ``expected`` when a writer may reuse it (sync)."""
        if expected is None:
            return None
        try:
            size = self.backend.info(expected).size
        except errdefs.NotFound:
            return None
        return size if not total or total == size else None

    @staticmethod
    def _shareable(tx, digest: str) -> bool:
        """True if a namespace labelled shareable holds ``digest``."""
        for row in tx.execute("SELECT n.labels FROM content c JOIN namespaces n ON n.name = c.namespace "
                              "WHERE c.digest = ?", (digest,)):
            if load_labels(row["labels"]).get(SHAREABLE_LABEL) == "true":
                return True
        return False

    async def status(self, namespace: str, ref: str) -> IngestStatus:
        validate_ref(ref)
        with self.db.read() as conn:
            row = conn.execute("SELECT backend_ref, expected FROM ingests WHERE namespace = ? AND ref = ?",
                               (namespace, ref)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"ingest {ref!r}: not found")
        return await trio.to_thread.run_sync(self._status, ref, row["backend_ref"], row["expected"])

    def _status(self, ref: str, bref: str, expected: str) -> IngestStatus:
        try:
            return attrs.evolve(self.backend.status(bref), ref=ref)
        except errdefs.NotFound:
            if not expected:
                raise errdefs.NotFound(f"ingest {ref!r}: not found") from None
        # A shared ingest (or one whose bytes were committed just before a crash).
        try:
            blob = self.backend.info(expected)
        except errdefs.NotFound:
            raise errdefs.NotFound(f"ingest {ref!r}: not found") from None
        return IngestStatus(ref=ref, offset=blob.size, total=blob.size, expected=expected,
                            started_at=blob.created_at, updated_at=blob.updated_at)

    async def list_statuses(self, namespace: str, filters_: list[str] | tuple[str, ...] = ()) -> list[IngestStatus]:
        flt = filters.parse_any(list(filters_))
        with self.db.read() as conn:
            rows = conn.execute("SELECT ref, backend_ref, expected FROM ingests WHERE namespace = ? ORDER BY ref",
                                (namespace,)).fetchall()
        rows = [r for r in rows if flt.match(filters.MappingAdaptor({"ref": r["ref"]}))]

        def collect() -> list[IngestStatus]:
            found = []
            for r in rows:
                try:
                    found.append(self._status(r["ref"], r["backend_ref"], r["expected"]))
                except errdefs.NotFound:
                    continue
            return found

        return await trio.to_thread.run_sync(collect)

    async def abort(self, namespace: str, ref: str, *, lease: str | None = None) -> None:
        """Drop the ingest; Unavailable while a writer holds it."""
        validate_ref(ref)
        with self.db.read() as conn:
            row = conn.execute("SELECT backend_ref FROM ingests WHERE namespace = ? AND ref = ?",
                               (namespace, ref)).fetchone()
        if row is None:
            raise errdefs.NotFound(f"ingest {ref!r}: not found")
        try:
            with client_ref(row["backend_ref"], ref):
                await trio.to_thread.run_sync(self.backend.abort, row["backend_ref"])
        except errdefs.NotFound:
            pass  # shared (no backend bytes) or already gone
        with self.db.write() as tx:
            tx.execute("DELETE FROM ingests WHERE namespace = ? AND ref = ?", (namespace, ref))
            if lease:
                tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
                           (namespace, lease, lease_records.INGESTS, ref))
            tx.mark_deleted()

    # -- convenience -----------------------------------------------------------

    async def ingest(self, namespace: str, ref: str, source: BinaryIO | bytes | bytearray | memoryview, *,
                     size: int | None = None, expected: str | None = None,
                     labels: dict[str, str] | None = None, lease: str | None = None) -> tuple[str, int]:
        """Stream ``source`` (a sync file object, or bytes) into the store and commit it.

        Returns (digest, size).  A blob already committed in the namespace is a
        success: it joins ``lease`` and gets ``labels`` merged in.
        """
        identifiers.validate_labels(labels)
        try:
            w = await self.writer(namespace, ref, total=size, expected=expected, lease=lease)
        except errdefs.AlreadyExists:
            return await self._existing(namespace, expected, labels)
        try:
            if w.backend is not None:
                await trio.to_thread.run_sync(copy_source, w.backend, source)
            digest = await w.commit(size or 0, expected, labels=labels)
        except errdefs.AlreadyExists:
            return await self._existing(namespace, expected or w.digest(), labels)
        finally:
            await w.close()
        return digest, w.committed_size

    async def _existing(self, namespace: str, digest: str, labels: dict[str, str] | None) -> tuple[str, int]:
        if labels:
            info = await self.update(namespace, digest, labels, [f"labels.{k}" for k in labels])
        else:
            info = await self.info(namespace, digest)
        return info.digest, info.size

    # -- commit (called by ContentWriter) --------------------------------------

    def _pin_expected(self, namespace: str, ref: str, bref: str, digest: str) -> None:
        """Name the digest in meta.db before its bytes appear in blobs/ (see module doc)."""
        with self.db.write() as tx:
            cur = tx.execute("UPDATE ingests SET expected = ? WHERE namespace = ? AND ref = ? AND backend_ref = ?",
                             (digest, namespace, ref, bref))
            if cur.rowcount == 0:
                raise errdefs.NotFound(f"ingest {ref!r}: not found (aborted or collected)")

    def _record_commit(self, namespace: str, ref: str, digest: str, size: int,
                       labels: dict[str, str], lease: str | None) -> bool:
        """Create the record, drop the ingest; True if the record already existed."""
        now = now_ns()
        with self.db.write() as tx:
            tx.ensure_namespace(namespace)
            cur = tx.execute("INSERT OR IGNORE INTO content (namespace, digest, size, labels, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (namespace, digest, size, dump_labels(labels), now, now))
            existed = cur.rowcount == 0
            tx.execute("DELETE FROM ingests WHERE namespace = ? AND ref = ?", (namespace, ref))
            if lease:
                tx.execute("DELETE FROM lease_resources WHERE namespace = ? AND lease = ? AND type = ? AND id = ?",
                           (namespace, lease, lease_records.INGESTS, ref))
            lease_records.add_to_lease(tx, namespace, lease, lease_records.CONTENT, digest)
        if not existed:
            self.events.publish(namespace, TOPIC_CONTENT_CREATE, ContentCreate(digest=digest, size=size))
        return existed
