"""GC on a real daemon, through the CLI and the GC.* RPC."""

from __future__ import annotations

import sqlite3

import pytest

from tests.gc.gc_helpers import digest_of

QUIET = {"plugins": {"io.dockyard.gc.v1.scheduler": {"startup_delay": "1h"}}}  # no automatic run

BLOB = b"collect me when my lease ends"
DIGEST = digest_of(BLOB)


def blob_path(daemon):
    return daemon.root / "io.dockyard.content.v1.content" / "blobs" / "sha256" / DIGEST.split(":")[1]


@pytest.fixture
def daemon(make_daemon):
    d = make_daemon(config=QUIET)
    d.start()
    yield d
    d.stop()


def test_lease_explain_dry_run_and_sync_delete(daemon):
    daemon.cli("leases", "create", "--id", "pull-1")
    daemon.cli("--lease", "pull-1", "content", "ingest", "layer-ref", input=BLOB)
    assert blob_path(daemon).exists()

    explained = daemon.cli("gc", "explain", "content", DIGEST).stdout.decode()
    assert "lease pull-1" in explained and "held by lease" in explained
    assert DIGEST not in daemon.cli("gc", "--dry-run").stdout.decode()

    daemon.cli("leases", "rm", "--sync", "pull-1")
    assert not blob_path(daemon).exists()
    assert DIGEST not in daemon.cli("content", "ls").stdout.decode()
    missing = daemon.cli("gc", "explain", "content", DIGEST, check=False)
    assert missing.returncode == 1 and b"not found" in missing.stderr


def test_gc_now_reports_counts_and_dry_run_lists(daemon):
    daemon.cli("content", "ingest", "orphan-ref", input=BLOB)  # committed without a lease: nothing keeps it
    listing = daemon.cli("gc", "--dry-run").stdout.decode().splitlines()
    assert listing[0].split() == ["KIND", "NAMESPACE", "ID"]
    assert any(line.split()[:3] == ["content", "default", DIGEST] for line in listing[1:])
    assert blob_path(daemon).exists()  # a dry run removes nothing
    out = daemon.cli("gc").stdout.decode()
    assert out.startswith("removed records: 1 content; backend: 1 blob")
    assert not blob_path(daemon).exists()
    stats = daemon.call("GC.Stats")
    assert stats["collections"] >= 1 and stats["last"]["counts"] is not None


def test_rows_written_while_stopped_are_collected_after_restart(make_daemon):
    d = make_daemon(config=QUIET)
    d.start()
    try:
        d.cli("leases", "create", "--id", "keep")
        d.cli("--lease", "keep", "content", "ingest", "r", input=BLOB)
        d.stop()
        db = sqlite3.connect(d.root / "io.dockyard.metadata.v1.sqlite" / "meta.db")
        with db:
            db.execute("INSERT INTO leases (namespace, id, labels, created_at) VALUES "
                       "('default', 'old', '{\"containerd.io/gc.expire\":\"2001-01-01T00:00:00Z\"}', 1)")
            db.execute("DELETE FROM lease_resources WHERE lease = 'keep'")
            db.execute("INSERT INTO lease_resources VALUES ('default', 'old', 'content', ?)", (DIGEST,))
        db.close()
        d.start()
        assert d.call("GC.Stats")["config"]["startup_delay"] == 3600.0
        report = d.call("GC.Collect", {"dry_run": False})
        assert {(r["kind"], r["id"]) for r in report["removed"]} == {("lease", "old"), ("content", DIGEST)}
        assert [r["id"] for r in report["backend"]] == [DIGEST]
        assert not blob_path(d).exists()
        assert [lease["id"] for lease in d.call("Leases.List")["leases"]] == ["keep"]
    finally:
        d.stop()
