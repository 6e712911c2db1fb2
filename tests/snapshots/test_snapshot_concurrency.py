"""Backends are called from worker threads: concurrent calls stay consistent."""

import os
import threading
import traceback

from snapshot_helpers import storage_entries


def test_concurrent_prepare_commit_and_cleanup(sn):
    sn.prepare("base-a")
    sn.commit("base", "base-a")
    errors = []
    stop = threading.Event()

    def worker(n):
        try:
            for i in range(15):
                sn.prepare(f"w{n}-{i}", "base")
                sn.commit(f"w{n}-{i}-c", f"w{n}-{i}")
                if i % 3 == 0:
                    sn.remove(f"w{n}-{i}-c")
        except Exception:  # reported below
            errors.append(traceback.format_exc())

    def cleaner():
        while not stop.is_set():
            try:
                sn.cleanup()
            except Exception:
                errors.append(traceback.format_exc())
                return

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    janitor = threading.Thread(target=cleaner)
    janitor.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    janitor.join(timeout=120)
    assert not errors, "\n".join(errors)
    sn.cleanup()
    infos = []
    sn.walk(infos.append)
    assert len(infos) == 1 + 3 * 10
    owned = {e for e in storage_entries(sn)}
    assert all(e.isdigit() for e in owned) and len(owned) == len(infos)
    for info in infos:  # every record still has its storage
        sn.usage(info.name)
        if info.name != "base":
            (m,) = sn.view(info.name + "-v", info.name)[-1:]
            assert os.path.exists(m.source) or "lowerdir=" in ",".join(m.options)


def test_regression_cleanup_tolerates_storage_removed_under_it(sn, monkeypatch):
    """Bug: cleanup raised FileNotFoundError when a concurrent remove renamed
    or deleted an unowned directory between cleanup's listing and its rename."""
    orphan = os.path.join(sn.snapshots_dir, "77")
    os.mkdir(orphan)
    doomed = os.path.join(sn.snapshots_dir, "rm-78")
    os.mkdir(doomed)
    real_rename = os.rename

    def racing_rename(src, dst):
        if src == orphan:
            os.rmdir(orphan)  # the concurrent remover got there first
            os.rmdir(doomed)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", racing_rename)
    sn.cleanup()
    assert storage_entries(sn) == []
