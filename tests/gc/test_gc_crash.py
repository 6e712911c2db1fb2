"""kill -9 of a process in the middle of a collection: meta.db stays consistent and the next run
finishes the job (metadata is deleted first, in one transaction; backend work is idempotent)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from actors.content import LocalStore
from actors.gc import Collector
from actors.metadata.db import MetadataDB
from tests.gc.gc_helpers import FakeMetadata, add_content, add_lease, add_resource, rows
from tests.gc.test_gc_backend import put_blob

CHILD = Path(__file__).with_name("crash_child.py")


def setup_root(root: Path) -> tuple[list[str], list[str]]:
    store = LocalStore(str(root / "content"))
    db = MetadataDB(str(root / "meta.db"))
    try:
        doomed = [put_blob(store, f"doomed {i}".encode()) for i in range(20)]
        kept = [put_blob(store, f"kept {i}".encode()) for i in range(3)]
        add_lease(db, "default", "keep")
        for digest in doomed + kept:
            add_content(db, "default", digest)
        for digest in kept:
            add_resource(db, "default", "keep", "content", digest)
    finally:
        db.close()
    return doomed, kept


def blob_files(root: Path) -> set[str]:
    return {"sha256:" + name.rsplit("-", 1)[-1] for name in os.listdir(root / "content" / "blobs" / "sha256")}


def run_child_until(root: Path, point: str) -> None:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(root), point],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (root / "reached").exists():
            if proc.poll() is not None:
                raise AssertionError(f"child exited early: {proc.stdout.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                raise AssertionError("child never reached the crash point")
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("point", ["while-marking", "after-commit", "mid-backend"])
def test_crash_during_gc_then_a_later_run_finishes(tmp_path, point):
    doomed, kept = setup_root(tmp_path)
    run_child_until(tmp_path, point)

    db = MetadataDB(str(tmp_path / "meta.db"))
    store = LocalStore(str(tmp_path / "content"))
    try:
        with db.read() as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        records = {d for (d,) in rows(db, "content", "digest")}
        on_disk = blob_files(tmp_path)  # including blobs set aside (renamed) but not yet unlinked
        if point == "while-marking":
            assert records == set(doomed + kept)  # nothing was committed
        else:
            assert records == set(kept)  # the one metadata transaction committed whole
            assert set(kept) <= on_disk
            assert on_disk - set(kept)  # ... but the backend work was cut short
        report = trio.run(Collector(FakeMetadata(db=db, content=store)).collect)
        assert {b.digest for b in store.list()} == set(kept) == blob_files(tmp_path)
        assert {d for (d,) in rows(db, "content", "digest")} == set(kept)
        assert {r.id for r in report.backend} == on_disk - set(kept)
    finally:
        db.close()
    assert not [p for p in os.listdir(tmp_path / "content" / "ingest") if not p.startswith(".")]
