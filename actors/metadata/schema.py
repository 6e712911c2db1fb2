"""meta.db's layout: one table per kind of record, every row keyed by namespace.

This is the bucket layout of containerd's bolt schema (v1/<ns>/<kind>/<key>) as
tables.  Labels are JSON maps; times are int nanoseconds.  Backend keys of
snapshots and ingests are ``<ns>/<seq>/<key>`` with ``seq`` from ``sequences``.
A snapshot row's ``kind`` is active|view|committed; ``pending`` is non-empty while
the backend call that creates it is in flight (see actors/snapshots/metadata.py).
A new version adds statements to MIGRATIONS; never edit a shipped one.
"""

SCHEMA_VERSION = 1

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL)""",
        """CREATE TABLE images (
            namespace TEXT NOT NULL, name TEXT NOT NULL,
            target TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, name))""",
        """CREATE TABLE containers (
            namespace TEXT NOT NULL, id TEXT NOT NULL,
            record TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, id))""",
        """CREATE TABLE content (
            namespace TEXT NOT NULL, digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, digest))""",
        "CREATE INDEX content_by_digest ON content (digest)",
        """CREATE TABLE ingests (
            namespace TEXT NOT NULL, ref TEXT NOT NULL,
            backend_ref TEXT NOT NULL,
            expected TEXT NOT NULL DEFAULT '',
            expire_at INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (namespace, ref))""",
        """CREATE TABLE snapshots (
            namespace TEXT NOT NULL, snapshotter TEXT NOT NULL, key TEXT NOT NULL,
            backend_key TEXT NOT NULL,
            parent TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL DEFAULT 'active',
            pending TEXT NOT NULL DEFAULT '',
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, snapshotter, key))""",
        "CREATE INDEX snapshots_by_backend ON snapshots (snapshotter, backend_key)",
        "CREATE INDEX snapshots_by_parent ON snapshots (namespace, snapshotter, parent)",
        """CREATE TABLE leases (
            namespace TEXT NOT NULL, id TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, id))""",
        """CREATE TABLE lease_resources (
            namespace TEXT NOT NULL, lease TEXT NOT NULL,
            type TEXT NOT NULL, id TEXT NOT NULL,
            PRIMARY KEY (namespace, lease, type, id))""",
        """CREATE TABLE sandboxes (
            namespace TEXT NOT NULL, id TEXT NOT NULL,
            record TEXT NOT NULL,
            labels TEXT NOT NULL DEFAULT '{}',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            PRIMARY KEY (namespace, id))""",
        "CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ],
}

#: tables whose rows keep a namespace from being deleted (leases, ingests and sandboxes do not)
BLOCKING_TABLES = ("images", "content", "containers", "snapshots")
