"""The metadata database: sqlite3 in WAL mode, one write transaction per mutation.

Why sqlite3 and not LMDB: it ships with Python (no extra native dependency),
gives real multi-statement transactions, survives kill -9 in WAL mode (a commit
is in the log before ``commit()`` returns), lets readers run beside one writer,
and its tables and indexes answer the lookups GC and filters need.  See
ARCHITECTURE.md.

Transactions are short and do not await, so on the event loop they are atomic
with respect to other tasks; ``write()`` notifies listeners (the GC scheduler)
after each commit.  Long scans (GC marking) open their own read connection in a
worker thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from typing import Callable, Iterator

from wire import errdefs

from .schema import BLOCKING_TABLES, MIGRATIONS, SCHEMA_VERSION


def now_ns() -> int:
    return time.time_ns()


def dump_labels(labels: dict[str, str] | None) -> str:
    return json.dumps(labels or {}, sort_keys=True, separators=(",", ":"))


def load_labels(text: str) -> dict[str, str]:
    return json.loads(text) if text else {}


class MetadataDB:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        self._conn = self._open(path)
        self._lock = threading.RLock()  # the connection may be used from a worker thread
        self._listeners: list[Callable[[bool], None]] = []
        self._migrate()

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable against process death; fsync at checkpoints
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        return conn

    def open_reader(self) -> sqlite3.Connection:
        """A separate connection for long reads in a worker thread (sees one snapshot)."""
        return self._open(self.path)

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise errdefs.FailedPrecondition(
                    f"{self.path}: schema version {version} is newer than this dockyard ({SCHEMA_VERSION})")
            for v in range(version + 1, SCHEMA_VERSION + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                for statement in MIGRATIONS[v]:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version={v}")
                self._conn.execute("COMMIT")

    def add_listener(self, fn: Callable[[bool], None]) -> None:
        """``fn(deleted)`` is called after every committed write."""
        self._listeners.append(fn)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    @contextlib.contextmanager
    def write(self) -> Iterator["WriteTx"]:
        """One write transaction; rolled back if the block raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            tx = WriteTx(self._conn)
            try:
                yield tx
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        for fn in self._listeners:
            fn(tx.deleted)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class WriteTx:
    """The connection of one write transaction, plus what it did that GC cares about."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.deleted = False

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def mark_deleted(self) -> None:
        self.deleted = True

    def ensure_namespace(self, namespace: str) -> bool:
        """Create ``namespace`` implicitly (first write inside it); True if it was new."""
        now = now_ns()
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO namespaces (name, labels, created_at, updated_at) VALUES (?, '{}', ?, ?)",
            (namespace, now, now),
        )
        return cur.rowcount == 1

    def next_sequence(self, name: str) -> int:
        self.conn.execute(
            "INSERT INTO sequences (name, value) VALUES (?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
        return self.conn.execute("SELECT value FROM sequences WHERE name = ?", (name,)).fetchone()[0]

    def namespace_in_use(self, namespace: str) -> str | None:
        """The first kind of record that keeps ``namespace`` from being deleted."""
        for table in BLOCKING_TABLES:
            row = self.conn.execute(f"SELECT 1 FROM {table} WHERE namespace = ? LIMIT 1", (namespace,)).fetchone()
            if row is not None:
                return table
        return None
