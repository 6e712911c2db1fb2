"""Group directory fsync: every caller returns only after an fsync that began after its call."""

from __future__ import annotations

import os
import threading

from actors.content import dirsync


def test_concurrent_callers_share_fsyncs(tmp_path, monkeypatch):
    started: list[int] = []
    calls: list[int] = []
    gate = threading.Event()
    real_fsync = os.fsync
    count = {"n": 0}

    def slow_fsync(fd):
        count["n"] += 1
        started.append(len(calls))  # how many callers had arrived when this fsync began
        gate.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(dirsync.os, "fsync", slow_fsync)
    lock = threading.Lock()

    def caller():
        with lock:
            calls.append(1)
        dirsync.fsync_dir(str(tmp_path))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    threads[0].start()
    while not started:  # the first fsync is running and holds the others back
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while dirsync._dirs[str(tmp_path)].requested < 8:  # all eight are inside, seven of them waiting
        threading.Event().wait(0.001)
    gate.set()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert count["n"] == 2  # the first caller's own fsync, then one for the seven that came while it ran
    assert started[-1] == 8


def test_a_failed_fsync_raises_for_its_caller_and_the_next_caller_retries(tmp_path, monkeypatch):
    real_fsync = os.fsync
    failures = iter([OSError(5, "EIO")])

    def flaky(fd):
        err = next(failures, None)
        if err is not None:
            raise err
        real_fsync(fd)

    monkeypatch.setattr(dirsync.os, "fsync", flaky)
    try:
        dirsync.fsync_dir(str(tmp_path))
    except OSError as exc:
        assert exc.errno == 5
    else:
        raise AssertionError("the failing fsync must raise")
    dirsync.fsync_dir(str(tmp_path))  # not marked done by the failure: this one syncs for real
