"""Many threads on one store: ref locks, racing commits, write errors, Trio callers."""

import errno
import os
import threading

import pytest
import trio

from actors.content import writer as writer_module
from content_helpers import blob_files, sha256
from wire.errdefs import AlreadyExists, ResourceExhausted, Unavailable


def run_all(fns):
    """Start every fn together in threads; return their results or exceptions."""
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i, fn):
        barrier.wait(timeout=30)
        try:
            results[i] = fn()
        except Exception as exc:  # collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_only_one_of_many_racing_opens_gets_the_ref(store):
    results = run_all([lambda: store.writer("ref")] * 8)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, Unavailable) for r in results if r is not winners[0])
    winners[0].close()


def test_racing_commits_of_one_digest_store_it_once(store):
    data = os.urandom(100_000)
    writers = []
    for i in range(6):
        w = store.writer(f"ref-{i}")
        w.write(data)
        writers.append(w)
    results = run_all([lambda w=w: w.commit(len(data), sha256(data)) for w in writers])
    assert results.count(sha256(data)) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 5
    assert blob_files(store) == {sha256(data): data}
    assert store.statuses() == []


@pytest.mark.parametrize("size", [100, 3 * writer_module.PARALLEL_MIN])
def test_write_error_keeps_offset_and_digest_consistent(store, monkeypatch, size):
    real_pwrite = os.pwrite
    budget = [size // 2]  # bytes the "disk" accepts before it is full

    def filling_pwrite(fd, data, offset):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = real_pwrite(fd, memoryview(data)[: budget[0]], offset)
        budget[0] -= n
        return n

    data = os.urandom(size)
    w = store.writer("ref")
    monkeypatch.setattr(writer_module.os, "pwrite", filling_pwrite)
    with pytest.raises(ResourceExhausted, match="'ref'"):
        w.write(data)
    monkeypatch.undo()
    assert w.offset == size // 2
    assert w.digest() == sha256(data[: size // 2])
    w.write(data[size // 2 :])
    assert w.commit(size, sha256(data)) == sha256(data)


async def test_driven_from_trio_through_worker_threads(store):
    data = os.urandom(1 << 20)
    w = await trio.to_thread.run_sync(store.writer, "trio-ref")
    with trio.fail_after(30):
        for pos in range(0, len(data), 256 << 10):
            await trio.to_thread.run_sync(w.write, data[pos : pos + (256 << 10)])
        digest = await trio.to_thread.run_sync(w.commit, len(data))
        got = await trio.to_thread.run_sync(store.read_range, digest, 0, 0)
    assert digest == sha256(data) and got == data
