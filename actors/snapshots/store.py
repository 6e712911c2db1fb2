"""A snapshotter's private metadata store: ``<root>/metadata.db`` (sqlite, WAL).

One row per snapshot, keyed by its free-form key, with a decimal sequence id
that names its storage directory.  The parent→children relation is the
``parent_id`` column (indexed, foreign key ON DELETE RESTRICT), so children are
found by id and a parent row can never be deleted under its children.

One connection, guarded by a re-entrant lock: each mutation is one
``BEGIN IMMEDIATE`` … ``COMMIT``; reads run in a deferred transaction so they
see one consistent state.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator

import attrs

from wire.errdefs import Internal, NotFound

from .types import Info, Kind

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    key       TEXT    NOT NULL UNIQUE,
    kind      INTEGER NOT NULL,
    parent_id INTEGER REFERENCES snapshots(id) ON DELETE RESTRICT,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    size      INTEGER NOT NULL DEFAULT 0,
    inodes    INTEGER NOT NULL DEFAULT 0,
    labels    TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS snapshots_by_parent ON snapshots(parent_id);
"""

_SELECT = """
SELECT s.id, s.key, s.kind, s.parent_id, p.key, s.created, s.updated,
       s.size, s.inodes, s.labels
FROM snapshots s LEFT JOIN snapshots p ON s.parent_id = p.id
"""

_CHAIN = """
WITH RECURSIVE up(depth, id) AS (
    SELECT 0, ?
    UNION ALL
    SELECT up.depth + 1, s.parent_id FROM up JOIN snapshots s ON s.id = up.id
    WHERE s.parent_id IS NOT NULL
)
SELECT up.depth, s.id, s.key, s.kind, s.parent_id, p.key, s.created, s.updated,
       s.size, s.inodes, s.labels
FROM up JOIN snapshots s ON s.id = up.id LEFT JOIN snapshots p ON s.parent_id = p.id
ORDER BY up.depth
"""


@attrs.frozen(kw_only=True)
class Row:
    id: int
    key: str
    kind: Kind
    parent_id: int | None
    parent_key: str
    created: int
    updated: int
    size: int
    inodes: int
    labels: dict[str, str]

    def info(self) -> Info:
        return Info(
            name=self.key, kind=self.kind, parent=self.parent_key, labels=self.labels,
            created=self.created, updated=self.updated,
        )


def _row(values: tuple) -> Row:
    id_, key, kind, parent_id, parent_key, created, updated, size, inodes, labels = values
    return Row(
        id=id_, key=key, kind=Kind(kind), parent_id=parent_id, parent_key=parent_key or "",
        created=created, updated=updated, size=size, inodes=inodes, labels=json.loads(labels),
    )


@attrs.define(eq=False)
class Tx:
    """Queries and changes inside one transaction of a MetaStore."""

    _conn: sqlite3.Connection

    def get(self, key: str) -> Row | None:
        found = self._conn.execute(_SELECT + " WHERE s.key = ?", (key,)).fetchone()
        return _row(found) if found else None

    def require(self, key: str) -> Row:
        row = self.get(key)
        if row is None:
            raise NotFound(f"snapshot {key!r}: not found")
        return row

    def by_id(self, id_: int) -> Row:
        found = self._conn.execute(_SELECT + " WHERE s.id = ?", (id_,)).fetchone()
        if found is None:
            raise Internal(f"snapshot id {id_}: dangling parent reference")
        return _row(found)

    def chain(self, row: Row) -> list[Row]:
        """``row`` and its ancestors, nearest first (one recursive query)."""
        if row.parent_id is None:
            return [row]
        found = self._conn.execute(_CHAIN, (row.parent_id,)).fetchall()
        rows = [row, *(_row(v[1:]) for v in found)]
        if rows[-1].parent_id is not None:
            raise Internal(f"snapshot {row.key!r}: dangling parent reference")
        return rows

    def children(self, id_: int) -> list[str]:
        return [k for (k,) in self._conn.execute(
            "SELECT key FROM snapshots WHERE parent_id = ? ORDER BY id", (id_,))]

    def committed_with_ref(self, ref: str, parent_id: int | None) -> str | None:
        """Key of a committed snapshot on ``parent_id`` labelled snapshot.ref=``ref``."""
        found = self._conn.execute(
            "SELECT key FROM snapshots WHERE kind = ? AND parent_id IS ?"
            " AND json_extract(labels, '$.\"containerd.io/snapshot.ref\"') = ? ORDER BY id LIMIT 1",
            (int(Kind.COMMITTED), parent_id, ref),
        ).fetchone()
        return found[0] if found else None

    def all(self) -> list[Row]:
        return [_row(v) for v in self._conn.execute(_SELECT + " ORDER BY s.id")]

    def ids(self) -> set[int]:
        return {i for (i,) in self._conn.execute("SELECT id FROM snapshots")}

    def insert(self, *, key: str, kind: Kind, parent_id: int | None,
               labels: dict[str, str], now: int) -> Row:
        cur = self._conn.execute(
            "INSERT INTO snapshots (key, kind, parent_id, created, updated, labels)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key, int(kind), parent_id, now, now, json.dumps(labels, sort_keys=True)),
        )
        return self.by_id(cur.lastrowid)

    def commit_active(self, id_: int, *, name: str, size: int, inodes: int,
                      labels: dict[str, str], now: int) -> Row:
        self._conn.execute(
            "UPDATE snapshots SET key = ?, kind = ?, size = ?, inodes = ?, labels = ?,"
            " updated = ? WHERE id = ?",
            (name, int(Kind.COMMITTED), size, inodes, json.dumps(labels, sort_keys=True), now, id_),
        )
        return self.by_id(id_)

    def set_labels(self, id_: int, labels: dict[str, str], now: int) -> Row:
        self._conn.execute(
            "UPDATE snapshots SET labels = ?, updated = ? WHERE id = ?",
            (json.dumps(labels, sort_keys=True), now, id_),
        )
        return self.by_id(id_)

    def delete(self, id_: int) -> None:
        self._conn.execute("DELETE FROM snapshots WHERE id = ?", (id_,))


@attrs.define(eq=False)
class MetaStore:
    path: str
    _conn: sqlite3.Connection
    lock: threading.RLock

    @classmethod
    def open(cls, path: str, *, synchronous: str = "FULL") -> MetaStore:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(SCHEMA)
        return cls(path, conn, threading.RLock())

    @contextlib.contextmanager
    def write(self) -> Iterator[Tx]:
        """One mutation: committed when the block ends, rolled back on error."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                yield Tx(self._conn)
            finally:
                self._conn.execute("ROLLBACK")

    def close(self) -> None:
        with self.lock:
            self._conn.close()
