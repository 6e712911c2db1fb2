"""kill -9 at any moment: ingests resume, and blobs/ never holds a partial blob."""

import os
import random
import select
import signal
import stat
import subprocess
import sys
import time

import pytest

from actors.content import LocalStore
from actors.content.ingest import IngestDir
from content_helpers import blob_files, sha256
from wire.errdefs import AlreadyExists

CHILD_WRITE_THEN_HANG = """
import random, sys
from actors.content import LocalStore
root, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(7).randbytes(n)
w = LocalStore(root).writer("crash-ref", total=n)
w.write(data[: k // 2])
w.write(data[k // 2 : k])
print("written", flush=True)
sys.stdin.read()  # hang until killed
"""

CHILD_COMMIT_FOREVER = """
import random, sys
from actors.content import LocalStore
root, first = sys.argv[1], int(sys.argv[2])
store = LocalStore(root)
i = first
while True:
    rnd = random.Random(i)
    data = rnd.randbytes(rnd.randrange(0, 3 << 20))
    w = store.writer(f"r{i}", total=len(data))
    pos = 0
    while pos < len(data):
        step = rnd.choice([1000, 64 << 10, 300 << 10, 1 << 20])
        w.write(data[pos : pos + step])
        pos += step
    w.commit(len(data))
    if i == first:
        print("committed", flush=True)
    i += 1
"""


def spawn(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_line(proc, want: bytes, timeout=30.0):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        kill(proc)
        pytest.fail(f"child did not report {want!r} in {timeout}s")
    line = proc.stdout.readline()
    if line.strip() != want:
        kill(proc)
        pytest.fail(f"child said {line!r}, stderr: {proc.stderr.read()!r}")


def kill(proc):
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        pipe.close()


def assert_blobs_whole(store):
    for digest, data in blob_files(store).items():
        assert sha256(data) == digest, f"partial or corrupt blob {digest}"
        assert stat.S_IMODE(os.stat(store.blob_path(digest)).st_mode) & 0o222 == 0


def test_resume_after_sigkill_mid_write(root):
    n, k = 5 << 20, 3 << 20
    proc = spawn(CHILD_WRITE_THEN_HANG, root, n, k)
    try:
        wait_line(proc, b"written")
    finally:
        kill(proc)
    assert proc.returncode == -signal.SIGKILL
    data = random.Random(7).randbytes(n)
    store = LocalStore(root)  # "daemon restart"
    assert blob_files(store) == {}
    status = store.status("crash-ref")
    assert (status.offset, status.total) == (k, n)
    w = store.writer("crash-ref")
    assert w.offset == k and w.digest() == sha256(data[:k])
    w.write_at(k, data[k:])
    assert w.commit(n, sha256(data)) == sha256(data)
    assert blob_files(store) == {sha256(data): data}
    assert store.statuses() == []


@pytest.mark.parametrize("round_", range(3))
def test_sigkill_at_any_moment_never_exposes_a_partial_blob(root, round_):
    proc = spawn(CHILD_COMMIT_FOREVER, root, 0)
    try:
        wait_line(proc, b"committed")
        time.sleep(random.Random(round_).uniform(0.0, 0.4))
    finally:
        kill(proc)
    store = LocalStore(root)
    assert_blobs_whole(store)
    assert len(blob_files(store)) >= 1
    # Every ingest left behind resumes at its offset and completes correctly.
    for status in store.statuses():
        i = int(status.ref[1:])
        rnd = random.Random(i)
        data = rnd.randbytes(rnd.randrange(0, 3 << 20))
        assert status.total == len(data) and status.offset <= len(data)
        with store.writer(status.ref) as w:
            assert w.offset == status.offset
            w.write(data[w.offset:])
            if store.exists(sha256(data)):  # killed between rename and ingest removal
                with pytest.raises(AlreadyExists):
                    w.commit(len(data), sha256(data))
            else:
                assert w.commit(len(data), sha256(data)) == sha256(data)
    assert_blobs_whole(store)
    assert store.statuses() == []


def test_crash_between_rename_and_ingest_removal(store, root, monkeypatch):
    def crash(self):
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(IngestDir, "remove", crash)
    w = store.writer("ref", total=3)
    w.write(b"abc")
    with pytest.raises(KeyboardInterrupt):
        w.commit(3)
    monkeypatch.undo()
    store = LocalStore(root)
    assert blob_files(store) == {sha256(b"abc"): b"abc"}
    assert store.status("ref").offset == 0  # the data file moved to blobs/
    with pytest.raises(AlreadyExists):
        store.writer("ref", expected=sha256(b"abc"))
    w = store.writer("ref", total=3)
    assert w.offset == 0  # data gone: recreated, not resumed
    w.write(b"abc")
    with pytest.raises(AlreadyExists):
        w.commit(3)
    assert store.statuses() == []
