"""Content.* over msgpack-RPC against a real dockyardd (reference §4.3)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.content.namespaced_helpers import sha256
from tests.support.daemon import Daemon
from wire import codec, errdefs

MiB = 1 << 20


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("content-rpc") / "dockyard").start()
    try:
        yield d
    finally:
        d.stop()


def blob_dir(d: Daemon) -> str:
    return os.path.join(d.root, "io.dockyard.content.v1.content", "blobs", "sha256")


ROOT = {"containerd.io/gc.root": "test"}  # unreferenced content is fair game for the daemon's GC


def write(d: Daemon, ns: str, params: dict, data: bytes, *, chunk: int = MiB, lease: str | None = None):
    params = {"labels": ROOT, **params}
    items = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    with d.client(namespace=ns) as c:
        return c.upload("Content.Write", params, items, lease=lease)


def read(d: Daemon, ns: str, digest: str, **kw) -> bytes:
    with d.client(namespace=ns) as c:
        return b"".join(item["data"] for item in c.stream("Content.Read", {"digest": digest, **kw}))


def test_write_info_read_ranges(shared_daemon):
    d, data = shared_daemon, os.urandom(3 * MiB + 5)
    result = write(d, "rw", {"ref": "r", "total": len(data), "expected": sha256(data),
                                  "labels": {"k": "v", **ROOT}}, data)
    assert result["digest"] == sha256(data) and result["committed"] and result["offset"] == len(data)
    with d.client(namespace="rw") as c:
        info = c.call("Content.Info", {"digest": sha256(data)})["info"]
        assert (info["size"], info["labels"]) == (len(data), {"k": "v", **ROOT})
        listed = [i["digest"] for batch in c.stream("Content.List", {"filters": ["labels.k==v"]})
                  for i in batch["info"]]
        assert listed == [sha256(data)]
        with pytest.raises(errdefs.OutOfRange):
            list(c.stream("Content.Read", {"digest": sha256(data), "offset": len(data) + 1}))
    assert read(d, "rw", sha256(data)) == data
    assert read(d, "rw", sha256(data), offset=-5, size=10) == data[:10]  # offset < 0 reads from 0
    assert read(d, "rw", sha256(data), offset=MiB - 3, size=7) == data[MiB - 3:MiB + 4]
    assert read(d, "rw", sha256(data), offset=len(data) - 2, size=100) == data[-2:]  # past the end: to the end
    assert read(d, "rw", sha256(data), offset=len(data)) == b""
    with pytest.raises(errdefs.NotFound):
        read(d, "elsewhere", sha256(data))


def test_status_resume_abort(shared_daemon):
    d, data = shared_daemon, os.urandom(2 * MiB)
    first = write(d, "res", {"ref": "r", "total": len(data), "commit": False}, data[:MiB])
    assert first["offset"] == MiB and not first["committed"]
    with d.client(namespace="res") as c:
        status = c.call("Content.Status", {"ref": "r"})["status"]
        assert (status["ref"], status["offset"], status["total"]) == ("r", MiB, len(data))
        assert [s["ref"] for s in c.call("Content.ListStatuses", {"filters": ["ref==r"]})["statuses"]] == ["r"]
    with pytest.raises(errdefs.OutOfRange):
        write(d, "res", {"ref": "r", "offset": 5}, b"x")
    done = write(d, "res", {"ref": "r", "offset": MiB, "expected": sha256(data)}, data[MiB:])
    assert done["digest"] == sha256(data)
    assert read(d, "res", sha256(data)) == data
    write(d, "res", {"ref": "gone", "commit": False}, b"partial")
    with d.client(namespace="res") as c:
        c.call("Content.Abort", {"ref": "gone"})
        with pytest.raises(errdefs.NotFound):
            c.call("Content.Status", {"ref": "gone"})
        assert c.call("Content.ListStatuses", {})["statuses"] == []


def test_already_exists_and_bad_items(shared_daemon):
    d, data = shared_daemon, b"already"
    write(d, "ae", {"ref": "r"}, data)
    with pytest.raises(errdefs.AlreadyExists, match=sha256(data)):
        write(d, "ae", {"ref": "r2", "expected": sha256(data)}, data)
    with pytest.raises(errdefs.InvalidArgument, match="bytes"):
        with d.client(namespace="ae") as c:
            c.upload("Content.Write", {"ref": "r3"}, ["not bytes"])
    with pytest.raises(errdefs.InvalidArgument):
        write(d, "ae", {"ref": "../escape"}, b"x")
    with pytest.raises(errdefs.FailedPrecondition, match="namespace is required"):
        with d.client(namespace=None) as c:
            c.call("Content.Info", {"digest": sha256(data)}, namespace=None)


def test_namespace_delete_is_refused_while_content_exists(shared_daemon):
    d = shared_daemon
    write(d, "nsdel", {"ref": "r"}, b"keep me")
    with d.client() as c:
        with pytest.raises(errdefs.FailedPrecondition, match="content"):
            c.call("Namespaces.Delete", {"name": "nsdel"})
        c.call("Content.Delete", {"digest": sha256(b"keep me")}, namespace="nsdel")
        c.call("Namespaces.Delete", {"name": "nsdel"})


def test_content_deleted_under_a_reader(shared_daemon):
    d, data = shared_daemon, os.urandom(8 * MiB)
    digest = write(d, "rd", {"ref": "r"}, data, chunk=4 * MiB)["digest"]
    with d.client(namespace="rd") as c:
        stream = c.stream("Content.Read", {"digest": digest})
        first = next(stream)
        assert first["offset"] == 0
        with d.client(namespace="rd") as other:
            other.call("Content.Delete", {"digest": digest})
        os.unlink(os.path.join(blob_dir(d), digest.split(":")[1]))  # what GC does with unnamed bytes
        got = first["data"] + b"".join(item["data"] for item in stream)
    assert got == data
    with pytest.raises(errdefs.NotFound):
        read(d, "rd", digest)


def test_events_after_commit_and_delete(shared_daemon):
    d = shared_daemon
    write(d, "ev", {"ref": "r"}, b"event me")
    d.call("Content.Delete", {"digest": sha256(b"event me")}, namespace="ev")
    seen = []
    with d.client() as c:  # replay from the start of the backlog: no race with the publisher
        for envelope in c.stream("Events.Subscribe", {"filters": ['namespace==ev,topic~="^/content/"'], "since": 0}):
            seen.append((envelope["topic"], envelope["event"]))
            if len(seen) == 2:
                break
    assert seen == [("/content/create", {"digest": sha256(b"event me"), "size": 8, "media_type": ""}),
                    ("/content/delete", {"digest": sha256(b"event me")})]


def _start_write(address: str, ref: str, total: int, expected: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(address)
    meta = codec.Metadata(namespace="default")
    sock.sendall(codec.encode(codec.Request(id=1, method="Content.Write",
                                            params={"ref": ref, "total": total, "expected": expected}, meta=meta)))
    return sock


def _offset(d: Daemon, ref: str) -> int:
    """The ingest's offset; 0 while the daemon has not opened it yet (its Write may still be on the way)."""
    try:
        return d.call("Content.Status", {"ref": ref})["status"]["offset"]
    except errdefs.NotFound:
        return 0


def test_resume_after_kill9_mid_ingest(make_daemon):
    d = make_daemon("kill9").start()
    data = os.urandom(12 * MiB)
    sock = _start_write(d.address, "big", len(data), sha256(data))
    try:
        for i in range(0, 6 * MiB, MiB):  # half the bytes, and no end of stream
            sock.sendall(codec.encode(codec.StreamItem(id=1, item=data[i:i + MiB])))
        deadline = time.monotonic() + 20
        while _offset(d, "big") < 4 * MiB:
            assert time.monotonic() < deadline, "the daemon did not write the streamed bytes"
            time.sleep(0.02)
        d.kill9()
    finally:
        sock.close()
    d.start()
    status = d.call("Content.Status", {"ref": "big"})["status"]
    offset = status["offset"]
    assert 4 * MiB <= offset <= 6 * MiB and status["total"] == len(data)
    assert os.listdir(blob_dir(d)) == []  # nothing partial is ever a blob
    done = write(d, "default", {"ref": "big", "offset": offset, "total": len(data), "expected": sha256(data)},
                 data[offset:])
    assert done["digest"] == sha256(data)
    assert os.listdir(blob_dir(d)) == [sha256(data).split(":")[1]]
    assert os.listdir(os.path.join(d.root, "io.dockyard.content.v1.content", "ingest")) == []
    assert read(d, "default", sha256(data)) == data
    with pytest.raises(errdefs.NotFound):
        d.call("Content.Status", {"ref": "big"})


def test_client_gone_mid_write_releases_the_ref_and_keeps_the_bytes(shared_daemon):
    d, data = shared_daemon, os.urandom(4 * MiB)
    sock = _start_write(d.address, "cut", len(data), sha256(data))
    try:
        for i in range(0, 2 * MiB, MiB):
            sock.sendall(codec.encode(codec.StreamItem(id=1, item=data[i:i + MiB])))
        deadline = time.monotonic() + 20
        while _offset(d, "cut") < 2 * MiB:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        sock.close()  # the client vanishes without ending its stream
    deadline = time.monotonic() + 20
    while True:  # the handler notices the hang-up, closes its writer and frees the ref
        try:
            done = write(d, "default", {"ref": "cut", "offset": 2 * MiB, "expected": sha256(data)}, data[2 * MiB:])
            break
        except errdefs.Unavailable:
            assert time.monotonic() < deadline, "the ref stayed locked after the client went away"
            time.sleep(0.02)
    assert done["digest"] == sha256(data)
    assert read(d, "default", sha256(data)) == data


def test_bytes_another_namespace_stored_are_not_received_again(shared_daemon):
    """Writer with the expected digest of a blob the backend holds: the daemon answers at
    once (without reading the stream) and the blob file is not rewritten."""
    d, data = shared_daemon, os.urandom(3 * MiB)
    write(d, "share-a", {"ref": "r"}, data)
    path = os.path.join(blob_dir(d), sha256(data).split(":")[1])
    before = os.stat(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(d.address)
    try:
        meta = codec.Metadata(namespace="share-b")
        params = {"ref": "r", "total": len(data), "expected": sha256(data), "labels": ROOT}
        sock.sendall(codec.encode(codec.Request(id=7, method="Content.Write", params=params, meta=meta)))
        sock.sendall(codec.encode(codec.StreamItem(id=7, item=data[:MiB])))  # ... and never the rest, nor an end
        sock.settimeout(20)
        conn = codec.Connection()
        response = None
        while response is None:
            chunk = sock.recv(65536)
            assert chunk, "the daemon closed the connection"
            conn.receive_data(chunk)
            response = next((e for e in conn.events() if isinstance(e, codec.Response)), None)
    finally:
        sock.close()
    assert response.error is None and response.result["digest"] == sha256(data)
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert read(d, "share-b", sha256(data)) == data
