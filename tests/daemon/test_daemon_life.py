"""A real dockyardd in a temp root: start, serve, refuse a twin, shut down cleanly."""

import os
import signal
import socket
import subprocess
import time

import msgpack
import pytest

from tests.support.daemon import BIN, Daemon
from wire import codec, errdefs
from wire.client import Client


def test_cli_against_a_live_daemon(daemon):
    out = daemon.cli("version").stdout.decode()
    assert "Server:" in out and "UUID:" in out
    plugins = daemon.cli("plugins", "ls").stdout.decode().splitlines()
    assert plugins[0].split() == ["TYPE", "ID", "PLATFORMS", "STATUS"]
    assert any(line.split()[:2] == ["io.dockyard.metadata.v1", "sqlite"] and line.split()[-1] == "ok"
               for line in plugins[1:])
    daemon.cli("namespaces", "create", "team-a", "owner=me")
    daemon.cli("namespaces", "label", "team-a", "tier=gold")
    lines = daemon.cli("namespaces", "ls").stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "LABELS"]
    assert lines[1].split() == ["team-a", "owner=me,tier=gold"]
    daemon.cli("namespaces", "label", "team-a", "owner=")
    import json

    listed = json.loads(daemon.cli("--format", "json", "namespaces", "ls").stdout)
    assert listed == [{"name": "team-a", "labels": {"tier": "gold"}}]
    called = json.loads(daemon.cli("call", "Namespaces.Get", '{"name": "team-a"}').stdout)
    assert called == {"name": "team-a", "labels": {"tier": "gold"}}
    assert daemon.cli("namespaces", "rm", "team-a").stdout.decode().strip() == "team-a"


def test_cli_errors_are_one_line_and_non_zero(daemon):
    r = daemon.cli("namespaces", "create", "bad name!", check=False)
    assert r.returncode == 1
    err = r.stderr.decode().strip()
    assert err.startswith("dockyard: ") and "\n" not in err and "bad name!" in err
    r = daemon.cli("call", "Nope.Method", check=False)
    assert r.returncode == 1 and "unknown method" in r.stderr.decode()
    r = daemon.cli("--address", "/nonexistent/sock", "version", check=False)
    assert r.returncode == 1 and "is dockyardd running" in r.stderr.decode()


def test_typed_errors_over_the_wire(daemon):
    with daemon.client() as c:
        with pytest.raises(errdefs.NotImplemented_):
            c.call("Namespaces.Frobnicate")
        with pytest.raises(errdefs.InvalidArgument, match="extra fields"):
            c.call("Namespaces.Create", {"name": "x", "color": "red"})
        with pytest.raises(errdefs.InvalidArgument):
            c.call("Namespaces.Create", {"name": "../etc"})
        with pytest.raises(errdefs.FailedPrecondition, match="namespace is required"):
            c.call("Events.Publish", {"topic": "/a/b"}, namespace=None)
        c.call("Namespaces.Create", {"name": "dup"})
        with pytest.raises(errdefs.AlreadyExists):
            c.call("Namespaces.Create", {"name": "dup"})
        with pytest.raises(errdefs.NotFound):
            c.call("Namespaces.Delete", {"name": "never-was"})
        # an unknown namespace answers with empty labels, as containerd's Get does
        assert c.call("Namespaces.Get", {"name": "ghost"}) == {"name": "ghost", "labels": {}}


def _raw(address: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(address)
    return s


def _read_until_closed(s: socket.socket) -> list:
    conn = codec.Connection()
    events = []
    while True:
        data = s.recv(65536)
        if not data:
            return events
        conn.receive_data(data)
        events.extend(conn.events())


@pytest.mark.parametrize("garbage", [
    b"\xc1\xc1\xc1",  # never-used msgpack byte
    msgpack.packb({"not": "a frame"}),
    msgpack.packb([0, 1, 42, [{}]]),  # method not a string
    msgpack.packb([7, 7, 7]),
])
def test_malformed_frames_close_only_that_connection(daemon, garbage):
    bystander = daemon.client()
    s = _raw(daemon.address)
    s.sendall(garbage)
    events = _read_until_closed(s)
    assert events and events[-1].method == "$error"
    assert events[-1].params[0] == "invalid_argument"
    s.close()
    assert bystander.call("Version.Version")["version"]
    assert daemon.call("Namespaces.List") == []
    bystander.close()


def test_oversized_frame_closes_the_connection(make_daemon):
    d = make_daemon(config={"rpc": {"max_frame_size": 65536}}).start()
    try:
        s = _raw(d.address)
        frame = codec.encode(codec.Request(id=1, method="Namespaces.Create",
                                           params={"name": "x", "labels": {"k": "v" * 200_000}}))
        try:
            s.sendall(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may hang up before we finish writing: that is the point
        events = []
        try:
            events = _read_until_closed(s)
        except ConnectionResetError:
            pass
        assert not events or (events[-1].method == "$error" and "larger than the limit" in events[-1].params[1])
        s.close()
        assert d.call("Namespaces.List") == []  # nothing created, daemon fine
    finally:
        assert d.stop() == 0


def test_second_daemon_on_the_same_root_is_refused(daemon):
    twin = subprocess.run([str(BIN / "dockyardd"), "--config", str(daemon.config_path),
                           "--address", str(daemon.base / "other.sock")],
                          capture_output=True, timeout=30)
    assert twin.returncode == 1
    assert b"another dockyardd" in twin.stderr and str(daemon.root).encode() in twin.stderr
    assert daemon.call("Version.Version")


def test_live_socket_is_refused_and_stale_socket_replaced(make_daemon, tmp_path):
    first = make_daemon("first").start()
    other = make_daemon("second")
    r = subprocess.run([str(BIN / "dockyardd"), "--config", str(other.config_path), "--address", first.address],
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and b"in use by another daemon" in r.stderr
    first.stop()
    # a dead socket file left by a crash is replaced
    stale = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()
    other.start("--address", stale, wait=False)
    other.address = stale
    other.wait_ready()
    assert oct(os.stat(stale).st_mode & 0o777) == "0o660"
    assert other.stop() == 0


def test_sigterm_shuts_down_cleanly_and_quickly(daemon):
    sub = daemon.client()
    stream = sub.stream("Events.Subscribe", {"filters": []})  # a live streaming call must not block shutdown
    daemon.call("Namespaces.Create", {"name": "x"})
    assert next(stream)["topic"] == "/namespaces/create"
    start = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - start < 10
    assert not os.path.exists(daemon.address)
    sub.close()
    # and the data is there after a restart
    daemon.start()
    assert [ns["name"] for ns in daemon.call("Namespaces.List")] == ["x"]


def test_kill9_then_restart_keeps_committed_state(daemon):
    daemon.call("Namespaces.Create", {"name": "kept", "labels": {"a": "1"}})
    daemon.kill9()
    daemon.start()
    assert daemon.call("Namespaces.Get", {"name": "kept"})["labels"] == {"a": "1"}


def test_required_plugin_failure_stops_startup(make_daemon):
    d = make_daemon(config={"required_plugins": ["io.dockyard.service.v1.nope"]})
    d.start(wait=False)
    assert d.proc.wait(30) == 1
    assert "required plugin io.dockyard.service.v1.nope is not registered" in d.log()
    d.proc = None
    d2 = make_daemon("d2", config={"required_plugins": ["io.dockyard.server.v1.websocket"],
                                   "websocket": {"address": "10.1.2.3:80"}})
    d2.start(wait=False)
    assert d2.proc.wait(30) == 1
    assert "required plugin io.dockyard.server.v1.websocket did not start" in d2.log()
    d2.proc = None


def test_disabled_plugin_is_not_loaded(make_daemon):
    d = make_daemon(config={"disabled_plugins": ["io.dockyard.server.v1.websocket"]}).start()
    try:
        ids = {p["id"] for p in d.call("Introspection.Plugins")}
        assert "websocket" not in ids and "rpc" in ids
    finally:
        d.stop()


def test_failed_plugin_is_recorded_and_daemon_serves(make_daemon):
    d = make_daemon(config={"websocket": {"address": "10.1.2.3:80"}}).start()
    try:
        plugins = {p["id"]: p for p in d.call("Introspection.Plugins")}
        assert plugins["websocket"]["status"] == "error"
        assert "only loopback" in plugins["websocket"]["error"]
        assert "websocket" in d.cli("plugins", "ls").stdout.decode()
    finally:
        d.stop()


def test_config_default_prints_everything():
    out = subprocess.run([str(BIN / "dockyardd"), "config", "default"], capture_output=True, check=True).stdout
    import tomllib

    doc = tomllib.loads(out.decode())
    assert doc["root"] == "/var/lib/dockyard" and doc["state"] == "/run/dockyard"
    assert "io.dockyard.timeout.rpc.request" in doc["timeouts"]
    assert doc["plugins"]["io.dockyard.event.v1.exchange"]["backlog"] == 10000


def test_bad_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text('root = "/tmp/x"\nstate = "/tmp/y"\n[plugins."io.dockyard.event.v1.exchange"]\nbaklog = 3\n')
    d = Daemon(tmp_path / "d")
    r = subprocess.run([str(BIN / "dockyardd"), "--config", str(bad), "--root", str(d.root), "--state", str(d.state)],
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and b"baklog" in r.stderr


def test_socket_and_token_permissions(daemon):
    assert os.stat(daemon.address).st_mode & 0o777 == 0o660
    assert os.stat(daemon.state / "events.token").st_mode & 0o777 == 0o600
