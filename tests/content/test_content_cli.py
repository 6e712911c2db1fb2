"""``dockyard content …`` and ``dockyard leases …`` against a real daemon, in ctr's shapes."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from cli.args import parse_labels
from cli.commands.content import human_duration, human_size
from cli.commands.leases import parse_go_duration
from tests.support.daemon import BIN, Daemon
from tests.support.processes import run_with_stderr_on_a_terminal
from wire import errdefs

ROOT_LABEL = "containerd.io/gc.root"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    daemon = Daemon(tmp_path_factory.mktemp("content-cli") / "dockyard").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


def keep(d: Daemon, ns: str) -> tuple[str, str]:
    """A lease that holds what the test ingests (the daemon's GC takes unreferenced content)."""
    d.call("Leases.Create", {"id": "keep"}, namespace=ns)
    return ("--lease", "keep")


def test_ingest_ls_get_label_info_rm(d):
    data = os.urandom(300_000)
    digest = sha256(data)
    d.cli("-n", "cli1", *keep(d, "cli1"), "content", "ingest", "--expected-size", str(len(data)),
          "--expected-digest", digest, "blob-1", input=data)
    d.cli("-n", "cli1", "content", "label", digest, f"{ROOT_LABEL}=keep")
    lines = out(d.cli("-n", "cli1", "content", "ls")).splitlines()
    assert lines[0].split() == ["DIGEST", "SIZE", "AGE", "LABELS"]
    assert lines[1].split()[:2] == [digest, "300kB"]
    assert lines[1].endswith(f"{ROOT_LABEL}=keep")
    assert out(d.cli("-n", "cli1", "content", "ls", "-q")).split() == [digest]
    assert out(d.cli("-n", "cli1", "content", "ls", "labels.nope==x")).splitlines() == ["DIGEST SIZE AGE LABELS"]
    assert d.cli("-n", "cli1", "content", "get", digest).stdout == data
    labelled = out(d.cli("-n", "cli1", "content", "label", digest, "a=b", "flag")).strip()
    assert labelled == f"a=b,{ROOT_LABEL}=keep,flag=true"
    assert out(d.cli("-n", "cli1", "content", "label", digest, "a=")).strip() == f"{ROOT_LABEL}=keep,flag=true"
    info = d.cli("-n", "cli1", "--format", "json", "content", "info", digest)
    assert f'"size": {len(data)}' in out(info)
    missing = "sha256:" + "0" * 64
    removed = d.cli("-n", "cli1", "content", "rm", digest, missing)  # a missing blob is not an error (ctr)
    assert out(removed).split() == [digest]
    result = d.cli("-n", "cli1", "content", "get", digest, check=False)
    assert result.returncode == 1 and b"not found" in result.stderr


def test_ingest_mismatch_leaves_an_active_ingest(d):
    result = d.cli("-n", "cli2", "content", "ingest", "--expected-size", "5", "short", input=b"abc", check=False)
    assert result.returncode == 1 and b"failed size validation" in result.stderr
    result = d.cli("-n", "cli2", "content", "ingest", "--expected-digest", "sha256:" + "1" * 64, "wrong",
                   input=b"abc", check=False)
    assert result.returncode == 1 and b"'wrong'" in result.stderr and b"unexpected commit digest" in result.stderr
    lines = out(d.cli("-n", "cli2", "content", "active")).splitlines()
    assert lines[0].split() == ["REF", "SIZE", "AGE"]
    assert sorted(line.split()[:2] for line in lines[1:]) == [["short", "3B"], ["wrong", "3B"]]
    result = d.cli("-n", "cli2", "content", "ingest", "../up", input=b"x", check=False)
    assert result.returncode == 1 and b"'..'" in result.stderr


def test_ingest_twice_is_success_and_resumes_a_known_digest(d):
    data = os.urandom(1 << 20)
    with d.client(namespace="cli3") as c:  # a previous, interrupted ingest of the same ref
        c.upload("Content.Write", {"ref": "again", "commit": False}, [data[:400_000]])
    d.cli("-n", "cli3", *keep(d, "cli3"), "content", "ingest", "--expected-digest", sha256(data), "again",
          input=data)
    assert d.cli("-n", "cli3", "content", "get", sha256(data)).stdout == data
    d.cli("-n", "cli3", "content", "ingest", "--expected-digest", sha256(data), "again", input=data)  # AlreadyExists


def test_progress_bar_only_on_a_terminal(d):
    data = os.urandom(5 << 20)
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address, "DOCKYARD_NAMESPACE": "cli4"}
    proc, shown = run_with_stderr_on_a_terminal([str(BIN / "dockyard"), "content", "ingest", "tty"], input=data,
                                                env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b""
    assert b"tty: " in shown and b"5.243MB" in shown
    quiet = d.cli("-n", "cli4", "content", "ingest", "pipe", input=data)  # stderr is a pipe here
    assert quiet.stderr == b""


def test_leases_cli(d):
    generated = out(d.cli("-n", "cli5", "leases", "create")).strip()
    assert generated
    assert out(d.cli("-n", "cli5", "leases", "create", "--id", "mine", "--expires", "0", "a=b")).strip() == "mine"
    lines = out(d.cli("-n", "cli5", "leases", "ls")).splitlines()
    assert lines[0].split() == ["ID", "CREATED", "AT", "LABELS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["mine"][2] == "a=b"
    assert rows[generated][2].startswith("containerd.io/gc.expire=")  # ctr's default: expires in 24h
    d.cli("-n", "cli5", "--lease", "mine", "content", "ingest", "leased", input=b"held")
    resources = out(d.cli("-n", "cli5", "leases", "resources", "mine")).splitlines()
    assert resources == ["TYPE    ID", f"content {sha256(b'held')}"]
    assert out(d.cli("-n", "cli5", "leases", "rm", "--sync", "mine")).strip() == "mine"
    result = d.cli("-n", "cli5", "content", "get", sha256(b"held"), check=False)
    assert result.returncode == 1  # collected with its lease
    result = d.cli("-n", "cli5", "leases", "rm", "nope", generated, check=False)
    assert result.returncode == 1 and b"lease 'nope': not found" in result.stderr
    assert out(result).strip() == generated
    result = d.cli("-n", "cli5", "--lease", "nope", "content", "ingest", "x", input=b"x", check=False)
    assert result.returncode == 1 and b"lease 'nope': not found" in result.stderr


@pytest.mark.parametrize("size, text", [(0, "0B"), (3, "3B"), (999, "999B"), (1000, "1kB"), (300_000, "300kB"),
                                        (1 << 20, "1.049MB"), (1 << 30, "1.074GB")])
def test_human_size_is_go_units(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize("seconds, text", [(0.2, "Less than a second"), (1, "1 second"), (59, "59 seconds"),
                                           (60, "About a minute"), (150, "2 minutes"), (3600, "About an hour"),
                                           (5 * 3600, "5 hours"), (3 * 86400, "3 days"), (20 * 86400, "2 weeks"),
                                           (90 * 86400, "3 months"), (800 * 86400, "2 years")])
def test_human_duration_is_go_units(seconds, text):
    assert human_duration(seconds) == text


def test_go_durations_and_label_args():
    assert parse_go_duration("24h") == 86400
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5 and parse_go_duration("0") == 0
    for bad in ("1d", "h", "10", "1h 2m"):
        with pytest.raises(errdefs.InvalidArgument):
            parse_go_duration(bad)
    assert parse_labels(["a=b", "c", "d=", "e=f=g"], bare_is_true=True) == {"a": "b", "c": "true", "d": "", "e": "f=g"}
    with pytest.raises(errdefs.InvalidArgument):
        parse_labels(["=x"], bare_is_true=True)


@pytest.mark.parametrize("rid, size", [(1, 0), (1, 5), (127, 1 << 20), (300, 70_000)])
def test_vectored_item_header_is_the_codec_frame(rid, size):
    from cli.commands.content import item_header
    from wire import codec

    payload = b"\x07" * size
    frame = item_header(rid, size) + payload
    parsed = list(_events(frame))
    assert parsed == [codec.StreamItem(id=rid, item=payload)]


def _events(frame: bytes):
    from wire import codec

    conn = codec.Connection()
    conn.receive_data(frame)
    return conn.events()


def test_ingest_of_known_content_stops_sending_early(d):
    """The daemon answers AlreadyExists at open; the CLI must stop there, not drain its input.
    stdin here never ends: only a CLI that stops early can exit."""
    import threading

    d.call("Leases.Create", {"id": "keep"}, namespace="cli6")
    data = os.urandom(1 << 20)
    d.cli("-n", "cli6", "--lease", "keep", "content", "ingest", "once", input=data)
    env = {**os.environ, "DOCKYARD_ADDRESS": d.address, "DOCKYARD_NAMESPACE": "cli6"}
    proc = subprocess.Popen([str(BIN / "dockyard"), "content", "ingest", "--expected-digest", sha256(data), "twice"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stop = threading.Event()

    def feed():
        try:
            while not stop.is_set():
                proc.stdin.write(b"\0" * 65536)
                proc.stdin.flush()
                stop.wait(0.01)
        except (BrokenPipeError, ValueError):
            pass

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        stop.set()
        feeder.join()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except BrokenPipeError:
                pass
