"""A change log of meta.db kept only while a collection runs (TEMP triggers).

Marking reads a snapshot of meta.db outside the write lock, so writes may land
between the snapshot and the sweep.  Instead of marking again under the lock,
the sweep asks this log which records were inserted or updated since the
snapshot and treats them as roots for this run (see sweep.py).  The log is
per connection (TEMP objects of MetadataDB's one write connection), costs one
lookup per write while no collection runs, and never reaches the file.

The snapshot and the start of logging happen while holding the DB's lock, so
no write can commit between them.
"""

from __future__ import annotations

import sqlite3

from actors.metadata.db import MetadataDB

# (table, node kind, key expression over NEW, extra expression)
_TRACKED = (
    ("content", "content", "NEW.digest", "''"),
    ("images", "image", "NEW.name", "''"),
    ("snapshots", "snapshot", "NEW.snapshotter || '/' || NEW.key", "''"),
    ("containers", "container", "NEW.id", "''"),
    ("sandboxes", "sandbox", "NEW.id", "''"),
    ("ingests", "ingest", "NEW.ref", "''"),
    ("leases", "lease", "NEW.id", "''"),
    ("lease_resources", "resource", "NEW.id", "NEW.type"),
)

RESOURCE = "resource"


def _statements() -> list[str]:
    out = [
        "CREATE TEMP TABLE IF NOT EXISTS gc_active (active INTEGER NOT NULL)",
        "CREATE TEMP TABLE IF NOT EXISTS gc_changes (kind TEXT NOT NULL, namespace TEXT NOT NULL, "
        "key TEXT NOT NULL, extra TEXT NOT NULL)",
    ]
    for table, kind, key, extra in _TRACKED:
        for op in ("INSERT", "UPDATE"):
            out.append(
                f"CREATE TEMP TRIGGER IF NOT EXISTS gc_log_{table}_{op.lower()} AFTER {op} ON main.{table} "
                f"WHEN EXISTS (SELECT 1 FROM temp.gc_active) "
                f"BEGIN INSERT INTO gc_changes VALUES ('{kind}', NEW.namespace, {key}, {extra}); END")
    return out


def install(db: MetadataDB) -> None:
    """Create the log's TEMP tables and triggers on the DB's write connection (idempotent)."""
    with db.read() as conn:
        for statement in _statements():
            conn.execute(statement)
        conn.execute("DELETE FROM temp.gc_active")


def begin(db: MetadataDB) -> sqlite3.Connection:
    """Open a reader pinned to the current state and start logging changes after it."""
    reader = db.open_reader()
    try:
        with db.read() as conn:  # no write can commit while we hold the lock
            conn.execute("DELETE FROM temp.gc_changes")
            conn.execute("DELETE FROM temp.gc_active")
            conn.execute("INSERT INTO temp.gc_active VALUES (1)")
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM namespaces").fetchone()  # pins the read snapshot
    except BaseException:
        reader.close()
        raise
    return reader


def take(conn: sqlite3.Connection, *, stop: bool) -> list[tuple[str, str, str, str]]:
    """Inside a sweep transaction: the changes logged since ``begin`` (or the last take);
    ``stop`` ends logging."""
    rows = [tuple(r) for r in conn.execute("SELECT kind, namespace, key, extra FROM temp.gc_changes")]
    conn.execute("DELETE FROM temp.gc_changes")
    if stop:
        conn.execute("DELETE FROM temp.gc_active")
    return rows


def stop(db: MetadataDB) -> None:
    """Stop logging (after a failed run)."""
    with db.read() as conn:
        conn.execute("DELETE FROM temp.gc_active")
        conn.execute("DELETE FROM temp.gc_changes")
