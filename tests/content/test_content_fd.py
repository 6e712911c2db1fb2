"""``Content.Write`` from a descriptor the client passed (SCM_RIGHTS), and ``content ingest < file``.

The descriptor is untrusted: only a regular file open for reading is accepted,
a declared size is checked, the digest is verified as always, and kill -9 mid-copy
leaves an ingest that resumes like a streamed one.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from actors.content import filesource
from tests.content.namespaced_helpers import sha256
from tests.support.daemon import BIN, Daemon
from tests.support.processes import run_with_stderr_on_a_terminal
from wire import errdefs

MiB = 1 << 20
ROOT = {"containerd.io/gc.root": "test"}


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("content-fd") / "dockyard").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def blob_names(d: Daemon) -> list[str]:
    path = os.path.join(d.root, "io.dockyard.content.v1.content", "blobs", "sha256")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def write_from(d: Daemon, ns: str, fd: int, **params):
    with d.client(namespace=ns) as c:
        return c.upload("Content.Write", {"labels": ROOT, "source_fd": 0, **params}, [], fds=[fd])


def read(d: Daemon, ns: str, digest: str) -> bytes:
    with d.client(namespace=ns) as c:
        return b"".join(item["data"] for item in c.stream("Content.Read", {"digest": digest}))


def ingest_cli(d: Daemon, ns: str, path, *args: str, check: bool = True, lease: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address, "DOCKYARD_NAMESPACE": ns}
    with open(path, "rb") as stdin:
        result = subprocess.run([str(BIN / "dockyard"), "--format", "json", *(["--lease", lease] if lease else []),
                                 "content", "ingest", *args],
                                stdin=stdin, capture_output=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


# -- the descriptor check (no daemon) ------------------------------------------------------


def test_only_a_regular_file_open_for_reading_is_a_source(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    rd, wr = os.pipe()
    fds = {"pipe": rd, "directory": os.open(tmp_path, os.O_RDONLY),
           "write-only": os.open(path, os.O_WRONLY), "O_PATH": os.open(path, os.O_PATH)}
    try:
        for what, fd in fds.items():
            with pytest.raises(errdefs.InvalidArgument, match="ref 'r'"):
                filesource.check_source(fd, "r")
        closed = os.open(path, os.O_RDONLY)
        os.close(closed)
        with pytest.raises(errdefs.InvalidArgument, match="ref 'r'"):
            filesource.check_source(closed, "r")
        fd = os.open(path, os.O_RDONLY)
        try:
            os.lseek(fd, 4, os.SEEK_SET)  # content starts where the descriptor stands, as stdin would
            assert filesource.check_source(fd, "r") == filesource.FileSource(fd=fd, start=4, size=6)
        finally:
            os.close(fd)
    finally:
        os.close(wr)
        for fd in fds.values():
            os.close(fd)


# -- over RPC ------------------------------------------------------------------------------


def test_a_passed_file_is_ingested_and_verified(d, tmp_path):
    data = os.urandom(5 * MiB + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with open(path, "rb") as fh:
        result = write_from(d, "fd1", fh.fileno(), ref="r", total=len(data), expected=sha256(data))
        assert fh.tell() == 0  # the daemon reads with pread: the client's position is untouched
    assert result == {"ref": "r", "offset": len(data), "total": len(data), "digest": sha256(data), "committed": True}
    assert read(d, "fd1", sha256(data)) == data
    assert sha256(data).split(":")[1] in blob_names(d)


def test_digest_mismatch_commits_nothing_and_keeps_the_ingest(d, tmp_path):
    data = os.urandom(MiB)
    path = tmp_path / "blob"
    path.write_bytes(data)
    wrong = "sha256:" + "1" * 64
    before = blob_names(d)
    with open(path, "rb") as fh, pytest.raises(errdefs.FailedPrecondition, match="'r'.*unexpected commit digest"):
        write_from(d, "fd2", fh.fileno(), ref="r", expected=wrong)
    assert blob_names(d) == before
    assert d.call("Content.Status", {"ref": "r"}, namespace="fd2")["status"]["offset"] == len(data)


def test_size_mismatch_is_refused_before_a_byte_is_written(d, tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 1000)
    with open(path, "rb") as fh, pytest.raises(errdefs.FailedPrecondition, match="'r': failed size validation: 1000 != 999"):
        write_from(d, "fd3", fh.fileno(), ref="r", total=999)
    assert d.call("Content.Status", {"ref": "r"}, namespace="fd3")["status"]["offset"] == 0


def test_a_descriptor_that_is_not_a_readable_regular_file_is_refused(d, tmp_path):
    rd, wr = os.pipe()
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    wronly = os.open(path, os.O_WRONLY)
    try:
        for fd in (rd, wronly):
            with pytest.raises(errdefs.InvalidArgument, match="ref 'bad'"):
                write_from(d, "fd4", fd, ref="bad")
        with d.client(namespace="fd4") as c, pytest.raises(errdefs.InvalidArgument, match="descriptor 0 was not passed"):
            c.upload("Content.Write", {"ref": "bad", "source_fd": 0}, [])
    finally:
        for fd in (rd, wr, wronly):
            os.close(fd)
    with pytest.raises(errdefs.NotFound):  # nothing was opened for a refused source
        d.call("Content.Status", {"ref": "bad"}, namespace="fd4")


def test_resume_from_a_passed_file_at_the_daemons_offset(d, tmp_path):
    data = os.urandom(3 * MiB)
    path = tmp_path / "blob"
    path.write_bytes(data)
    with d.client(namespace="fd5") as c:  # an earlier, interrupted ingest of the first MiB
        c.upload("Content.Write", {"ref": "r", "commit": False}, [data[:MiB]])
    with open(path, "rb") as fh:
        fh.seek(MiB)
        result = write_from(d, "fd5", fh.fileno(), ref="r", offset=MiB, expected=sha256(data))
    assert result["digest"] == sha256(data) and read(d, "fd5", sha256(data)) == data


# -- the CLI -------------------------------------------------------------------------------


def test_cli_ingest_of_a_regular_file_passes_it_and_checks_as_before(d, tmp_path):
    d.call("Leases.Create", {"id": "keep"}, namespace="fd6")
    data = os.urandom(2 * MiB + 7)
    path = tmp_path / "blob"
    path.write_bytes(data)
    out = ingest_cli(d, "fd6", path, "--expected-size", str(len(data)), "--expected-digest", sha256(data), "r",
                     lease="keep")
    assert b'"digest": "' + sha256(data).encode() in out.stdout
    env = {"DOCKYARD_NAMESPACE": "fd6"}
    assert d.cli("content", "get", sha256(data), env=env).stdout == data
    bad = ingest_cli(d, "fd6", path, "--expected-size", "5", "short", check=False)
    assert bad.returncode == 1 and b"failed size validation" in bad.stderr
    wrong = ingest_cli(d, "fd6", path, "--expected-digest", "sha256:" + "2" * 64, "wrong", check=False)
    assert wrong.returncode == 1 and b"unexpected commit digest" in wrong.stderr
    again = ingest_cli(d, "fd6", path, "--expected-digest", sha256(data), "again")  # AlreadyExists is success
    assert again.stdout == b""


def test_kill9_mid_copy_leaves_an_ingest_the_cli_resumes(make_daemon, tmp_path):
    d = make_daemon("fd-kill9").start()
    size = 512 * MiB
    path = tmp_path / "big"
    with open(path, "wb") as fh:  # sparse: cheap to make, still 512 MiB to copy and hash
        fh.truncate(size)
        fh.seek(size // 2)
        fh.write(os.urandom(4096))
    with open(path, "rb") as fh:
        whole = sha256(fh.read())
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address}
    with open(path, "rb") as stdin:
        proc = subprocess.Popen([str(BIN / "dockyard"), "content", "ingest", "--expected-digest", whole, "big"],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 60
        offset = 0
        while not offset:
            assert time.monotonic() < deadline, "the daemon never started copying"
            try:
                offset = d.call("Content.Status", {"ref": "big"})["status"]["offset"]
            except errdefs.NotFound:
                pass
        d.kill9()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode != 0
    d.start()
    status = d.call("Content.Status", {"ref": "big"})["status"]
    assert 0 < status["offset"] < size and blob_names(d) == []  # nothing partial is ever a blob
    d.call("Leases.Create", {"id": "keep"})
    result = ingest_cli(d, "default", path, "--expected-digest", whole, "big", lease="keep")
    assert b'"committed": true' in result.stdout and blob_names(d) == [whole.split(":")[1]]


def test_cli_progress_bar_for_a_passed_file_only_on_a_terminal(d, tmp_path):
    data = os.urandom(5 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address, "DOCKYARD_NAMESPACE": "fd7"}
    with open(path, "rb") as stdin:
        proc, shown = run_with_stderr_on_a_terminal([str(BIN / "dockyard"), "content", "ingest", "tty"],
                                                    stdin=stdin, env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"tty: [" in shown and b"5.243MB/5.243MB" in shown  # the size is known from the file
    quiet = ingest_cli(d, "fd7", path, "pipe")  # stderr is a pipe here
    assert quiet.stderr == b""


def test_cli_ingest_starts_where_stdin_stands(d, tmp_path):
    """As a streamed stdin would: ``(read 10 bytes; dockyard content ingest) < file`` ingests the rest."""
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    d.call("Leases.Create", {"id": "keep"}, namespace="fd8")
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address, "DOCKYARD_NAMESPACE": "fd8"}
    with open(path, "rb") as stdin:
        stdin.seek(10)
        subprocess.run([str(BIN / "dockyard"), "--lease", "keep", "content", "ingest", "--expected-digest",
                        sha256(data[10:]), "tail"], stdin=stdin, env=env, check=True, capture_output=True, timeout=60)
    assert read(d, "fd8", sha256(data[10:])) == data[10:]
