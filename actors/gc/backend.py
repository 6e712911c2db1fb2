"""Deleting backend objects no namespace names any more (blocking: run in a thread).

Backends are shared by every namespace: a blob is kept while any content
record has its digest or any ingest record expects it; a backend ingest while
any ingest record has its backend ref; a backend snapshot while any snapshot
record has its backend key (``<ns>/<seq>/<key>``).  Everything else goes:
blobs, then ingests; snapshots leaves first, then the snapshotter's
``cleanup`` reclaims their storage.

Each deletion re-checks meta.db while holding the DB's lock (in chunks, so the
lock is held for a few milliseconds at a time): a record that names the object
cannot be created between the check and the delete.  Blobs are only renamed
aside under the lock and unlinked after it, in parallel.  Objects created after the
collection started are left for the next run, so a writer that has put bytes in
the backend but not yet committed its record is never robbed.  The work is
idempotent: a run cut short (crash, error) is finished by the next one.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator

from actors.metadata.db import MetadataDB
from wire import errdefs

log = logging.getLogger("dockyard.gc")

CHUNK = 256
UNLINK_THREADS = 16
TRASH_PREFIX = ".gc-"  # a blob set aside for unlinking (not a valid blob name: the store never lists it)


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _named_blobs(conn, digests: list[str]) -> set[str]:
    marks = ",".join("?" * len(digests))
    named = {r[0] for r in conn.execute(f"SELECT DISTINCT digest FROM content WHERE digest IN ({marks})", digests)}
    named.update(r[0] for r in conn.execute(
        f"SELECT DISTINCT expected FROM ingests WHERE expected IN ({marks})", digests))
    return named


def _trash_path(path: str) -> str:
    return os.path.join(os.path.dirname(path), TRASH_PREFIX + os.path.basename(path))


def _leftover_trash(store: Any) -> list[tuple[str, str]]:
    """(digest, path) of blobs a crashed run had already set aside."""
    found = []
    try:
        algorithms = os.listdir(store.blobs_root)
    except FileNotFoundError:
        return []
    for algorithm in algorithms:
        directory = os.path.join(store.blobs_root, algorithm)
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found += [(f"{algorithm}:{n[len(TRASH_PREFIX):]}", os.path.join(directory, n))
                  for n in names if n.startswith(TRASH_PREFIX)]
    return found


def unlink_many(paths: list[str]) -> None:
    """Unlink in parallel: on ext4 each unlink of a freshly synced file waits on the journal, and
    concurrent ones share its commits (16 threads: ~20x faster than one at a time here)."""
    def unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    if len(paths) < 8:
        for path in paths:
            unlink(path)
        return
    with ThreadPoolExecutor(max_workers=UNLINK_THREADS, thread_name_prefix="gc-unlink") as pool:
        list(pool.map(unlink, paths))


def clean_blobs(db: MetadataDB, store: Any, started_ns: int) -> list[str]:
    """Delete blobs no record names; returns their digests.

    Under the DB lock a doomed blob is only renamed aside (``.gc-<hex>`` in its
    directory, which the store does not list); the slow unlinks run after the lock
    is released, in parallel.  Names set aside by a crashed run are unlinked too.
    """
    trash = _leftover_trash(store)
    old = [b.digest for b in store.list() if b.created_at < started_ns]
    named: set[str] = set()
    if old:
        reader = db.open_reader()
        try:
            for chunk in _chunks(old, 900):
                named |= _named_blobs(reader, chunk)
        finally:
            reader.close()
    for chunk in _chunks([d for d in old if d not in named]):
        with db.read() as conn:  # the lock: no record can appear between check and rename
            still = _named_blobs(conn, chunk)
            for digest in chunk:
                if digest in still:
                    continue
                path = store.blob_path(digest)
                try:
                    os.rename(path, _trash_path(path))
                except FileNotFoundError:
                    continue
                trash.append((digest, _trash_path(path)))
    unlink_many([path for _, path in trash])
    return [digest for digest, _ in trash]


def clean_ingests(db: MetadataDB, store: Any, started_ns: int) -> list[str]:
    """Abort backend ingests no ingest record points at; returns their refs."""
    old = [s.ref for s in store.statuses() if s.started_at < started_ns]
    if not old:
        return []
    removed: list[str] = []
    with db.read() as conn:
        named = {r[0] for r in conn.execute("SELECT backend_ref FROM ingests")}
    for ref in old:
        if ref in named:
            continue
        with db.read() as conn:
            if conn.execute("SELECT 1 FROM ingests WHERE backend_ref = ?", (ref,)).fetchone():
                continue
            try:
                store.abort(ref)
            except (errdefs.NotFound, errdefs.Unavailable, errdefs.InvalidArgument):
                continue  # gone, or a writer holds it right now
        removed.append(ref)
    return removed


def clean_snapshots(db: MetadataDB, name: str, snapshotter: Any, started_ns: int) -> list[str]:
    """Remove backend snapshots of ``name`` that no record names, leaves first, then cleanup."""
    infos: list = []
    snapshotter.walk(infos.append)
    with db.read() as conn:
        named = {r[0] for r in conn.execute("SELECT backend_key FROM snapshots WHERE snapshotter = ?", (name,))}
    children: dict[str, int] = {}
    for info in infos:
        if info.parent:
            children[info.parent] = children.get(info.parent, 0) + 1
    parents = {info.name: info.parent for info in infos}
    pending = {info.name for info in infos if info.name not in named and info.created < started_ns}
    removed: list[str] = []
    progress = True
    while pending and progress:
        progress = False
        for key in sorted(k for k in pending if not children.get(k)):
            pending.discard(key)
            with db.read() as conn:
                if conn.execute("SELECT 1 FROM snapshots WHERE snapshotter = ? AND backend_key = ?",
                                (name, key)).fetchone():
                    continue
                try:
                    snapshotter.remove(key)
                except errdefs.NotFound:
                    pass
                except errdefs.FailedPrecondition as exc:  # children appeared meanwhile
                    log.info("gc: backend snapshot %s/%s kept: %s", name, key, exc.message)
                    continue
            removed.append(key)
            parent = parents.get(key)
            if parent:
                children[parent] -= 1
            progress = True
    snapshotter.cleanup()
    return removed


def orphans(marked_names: Iterable[str], present: Iterable[str]) -> list[str]:
    keep = set(marked_names)
    return sorted(p for p in present if p not in keep)
