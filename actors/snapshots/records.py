"""Snapshot records in meta.db (table ``snapshots``), as the namespaced layer sees them.

One row per (namespace, snapshotter, key): the backend key ``<ns>/<seq>/<key>``
it stands for, its parent's key in the same namespace, kind, labels and times.
``pending`` marks a row whose backend call is still in flight: ``create`` (a
prepare or view) or ``commit:<active key>`` (the name a commit will produce).
Pending rows are invisible to clients, yet they reserve their key, count as
children of their parent and name their backend key, so a collector keeps the
backend snapshot while it is being made.  Plain sync helpers over one
transaction or connection; they never await.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import attrs

from actors.metadata.db import dump_labels, load_labels
from oci.identity import LABEL_SNAPSHOT_PREFIX, LABEL_SNAPSHOT_REF
from wire.errdefs import InvalidArgument
from wire.identifiers import validate_labels

from .types import Kind

PENDING_CREATE = "create"
PENDING_COMMIT = "commit:"  # + the key of the active snapshot being committed


@attrs.frozen(kw_only=True)
class SnapshotInfo:
    """What ``stat`` and ``list`` tell about one snapshot of a namespace.  Times in ns."""

    name: str
    kind: Kind = Kind.ACTIVE
    parent: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    created_at: int = 0
    updated_at: int = 0

    def filter_view(self) -> dict[str, Any]:
        """The fields the filter language sees: kind name parent labels.<k>."""
        return {"kind": self.kind.label, "name": self.name, "parent": self.parent, "labels": self.labels}


@attrs.frozen(kw_only=True)
class Row:
    namespace: str
    key: str
    backend_key: str
    parent: str
    kind: Kind
    pending: str
    labels: dict[str, str]
    created_at: int
    updated_at: int

    def info(self) -> SnapshotInfo:
        return SnapshotInfo(name=self.key, kind=self.kind, parent=self.parent, labels=dict(self.labels),
                            created_at=self.created_at, updated_at=self.updated_at)


def row_from_sql(r) -> Row:
    return Row(namespace=r["namespace"], key=r["key"], backend_key=r["backend_key"], parent=r["parent"],
               kind=Kind.parse(r["kind"]), pending=r["pending"], labels=load_labels(r["labels"]),
               created_at=r["created_at"], updated_at=r["updated_at"])


def backend_key(namespace: str, seq: int, key: str) -> str:
    return f"{namespace}/{seq}/{key}"


def inherited_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The labels the backend gets: ``containerd.io/snapshot/*`` and ``containerd.io/snapshot.ref``."""
    return {k: v for k, v in labels.items() if k.startswith(LABEL_SNAPSHOT_PREFIX) or k == LABEL_SNAPSHOT_REF}


def checked_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """Labels with containerd's rule applied; empty values mean "no label"."""
    validate_labels(labels)
    return {k: v for k, v in (labels or {}).items() if v}


def updated_labels(name: str, old: Mapping[str, str], new: Mapping[str, str],
                   fieldpaths: Collection[str] | None) -> dict[str, str]:
    """containerd's Update: no paths or ``labels`` replace all; ``labels.<k>`` sets or clears one."""
    validate_labels(new)
    if not fieldpaths:
        return checked_labels(new)
    labels = dict(old)
    for path in fieldpaths:
        if path == "labels":
            labels = dict(new)
        elif path.startswith("labels.") and len(path) > len("labels."):
            k = path[len("labels."):]
            if new.get(k):
                labels[k] = new[k]
            else:
                labels.pop(k, None)
        else:
            raise InvalidArgument(f"snapshot {name!r}: cannot update field {path!r} (only labels)")
    return checked_labels(labels)


# -- queries and changes (table ``snapshots``) --------------------------------------------

_COLUMNS = "namespace, key, backend_key, parent, kind, pending, labels, created_at, updated_at"


def get(conn, ns: str, sn: str, key: str) -> Row | None:
    """The row of ``key``, pending or not."""
    r = conn.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                     (ns, sn, key)).fetchone()
    return row_from_sql(r) if r is not None else None


def get_live(conn, ns: str, sn: str, key: str) -> Row | None:
    row = get(conn, ns, sn, key)
    return row if row is not None and not row.pending else None


def live_rows(conn, ns: str, sn: str) -> list[Row]:
    return [row_from_sql(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM snapshots WHERE namespace = ? AND snapshotter = ? AND pending = '' ORDER BY key",
        (ns, sn))]


def pending_rows(conn, sn: str) -> list[Row]:
    return [row_from_sql(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM snapshots WHERE snapshotter = ? AND pending != '' ORDER BY namespace, key",
        (sn,))]


def first_child(conn, ns: str, sn: str, key: str) -> str | None:
    r = conn.execute("SELECT key FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ? LIMIT 1",
                     (ns, sn, key)).fetchone()
    return r["key"] if r is not None else None


def insert(tx, ns: str, sn: str, *, key: str, bkey: str, parent: str, kind: Kind, pending: str,
           labels: Mapping[str, str], created_at: int, updated_at: int) -> None:
    tx.execute(
        "INSERT INTO snapshots (namespace, snapshotter, key, backend_key, parent, kind, pending, labels,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ns, sn, key, bkey, parent, kind.label, pending, dump_labels(dict(labels)), created_at, updated_at))


def settle(tx, ns: str, sn: str, key: str, bkey: str, pending: str, now: int) -> bool:
    """Make a pending row live; False when it is no longer there as reserved."""
    cur = tx.execute(
        "UPDATE snapshots SET pending = '', created_at = ?, updated_at = ?"
        " WHERE namespace = ? AND snapshotter = ? AND key = ? AND backend_key = ? AND pending = ?",
        (now, now, ns, sn, key, bkey, pending))
    return cur.rowcount == 1


def delete(tx, ns: str, sn: str, key: str, *, bkey: str | None = None) -> bool:
    sql = "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?"
    params: tuple = (ns, sn, key)
    if bkey is not None:
        sql += " AND backend_key = ?"
        params += (bkey,)
    return tx.execute(sql, params).rowcount == 1


def set_labels(tx, ns: str, sn: str, key: str, labels: Mapping[str, str], now: int) -> None:
    tx.execute("UPDATE snapshots SET labels = ?, updated_at = ? WHERE namespace = ? AND snapshotter = ? AND key = ?",
               (dump_labels(dict(labels)), now, ns, sn, key))
