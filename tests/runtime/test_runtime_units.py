"""Pure pieces of the runtime: runtime names, bootstrap parsing, bundles on disk, CNI conflists."""

from __future__ import annotations

import json
import os
import stat

import pytest

from actors.network import cni
from actors.runtime import binary, bundle as bundles, shimcmd
from wire import errdefs


@pytest.mark.parametrize("name, expected", [
    ("io.dockyard.runc.v1", "dockyard-shim-runc-v1"),
    ("io.containerd.runc.v2", "dockyard-shim-runc-v2"),
    ("example.kata.v2", "dockyard-shim-kata-v2"),
])
def test_binary_names(name, expected):
    assert binary.binary_name(name) == expected


@pytest.mark.parametrize("bad", ["", "runc", "a/b.c.v1", "io.x."])
def test_bad_runtime_names(bad):
    with pytest.raises(errdefs.InvalidArgument):
        binary.binary_name(bad)


def test_resolve_finds_the_shim_next_to_the_daemon_and_refuses_unknown(tmp_path):
    assert os.path.basename(binary.resolve("io.dockyard.runc.v1")) == "dockyard-shim-runc-v1"
    with pytest.raises(errdefs.NotFound, match="io.nope.v7"):
        binary.resolve("io.nope.v7")
    exe = tmp_path / "my-shim"
    exe.write_text("#!/bin/sh\n")
    with pytest.raises(errdefs.NotFound):
        binary.resolve(str(exe))  # not executable
    exe.chmod(0o755)
    assert binary.resolve(str(exe)) == str(exe)


def test_parse_bootstrap():
    boot = shimcmd.parse_bootstrap(b'{"version":3,"address":"unix:///s/x","protocol":"msgpack-rpc"}\n', "t")
    assert boot == {"version": 3, "address": "unix:///s/x", "protocol": "msgpack-rpc"}
    assert shimcmd.parse_bootstrap(b"unix:///s/y\n", "t")["address"] == "unix:///s/y"
    with pytest.raises(errdefs.NotImplemented_):
        shimcmd.parse_bootstrap(b'{"version":4,"address":"unix:///s"}', "t")
    with pytest.raises(errdefs.NotImplemented_):
        shimcmd.parse_bootstrap(b'{"version":3,"address":"unix:///s","protocol":"ttrpc"}', "t")
    with pytest.raises(errdefs.Internal):
        shimcmd.parse_bootstrap(b"", "t")
    assert shimcmd.socket_path("unix:///a/b") == "/a/b"
    with pytest.raises(errdefs.NotImplemented_):
        shimcmd.socket_path("vsock://3:1024")


def test_bundle_layout_scan_and_remove(tmp_path):
    root = tmp_path / "io.dockyard.runtime.v1.task"
    b = bundles.Bundle(root=str(root), namespace="ns1", id="c1")
    b.create({"ociVersion": "1.0.2"}, {"root": "/r"})
    assert stat.S_IMODE(os.stat(b.path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(root / "ns1").st_mode) == 0o711
    assert json.loads((root / "ns1" / "c1" / "config.json").read_text()) == {"ociVersion": "1.0.2"}
    assert b.read_json(bundles.OPTIONS) == {"root": "/r"}
    assert b.read_json(bundles.BOOTSTRAP) is None
    with pytest.raises(errdefs.AlreadyExists):
        b.create({}, {})
    (root / "ns1" / ".half-removed").mkdir()
    (root / ".shims").mkdir()
    assert [(x.namespace, x.id) for x in bundles.scan(str(root))] == [("ns1", "c1")]
    assert not (root / "ns1" / ".half-removed").exists()
    (root / "ns1" / "c1" / "config.json").write_text("{not json")
    with pytest.raises(errdefs.DataLoss):
        b.read_json(bundles.CONFIG)
    b.remove()
    assert not (root / "ns1").exists()
    b.remove()  # twice is fine


def test_conflist_loading_and_plugin_errors(tmp_path):
    with pytest.raises(errdefs.NotFound):
        cni.load_conflist(str(tmp_path))
    (tmp_path / "20-single.conf").write_text(json.dumps({"cniVersion": "0.4.0", "name": "one", "type": "bridge"}))
    (tmp_path / "10-list.conflist").write_text(json.dumps(cni.default_conflist(name="two")))
    assert cni.load_conflist(str(tmp_path))["name"] == "two"
    single = cni.load_conflist(str(tmp_path), "one")
    assert single["plugins"] == [{"cniVersion": "0.4.0", "name": "one", "type": "bridge"}]
    (tmp_path / "30-bad.conflist").write_text("{")
    with pytest.raises(errdefs.InvalidArgument):
        cni.load_conflist(str(tmp_path), "absent")
    fake = tmp_path / "bin"
    fake.mkdir()
    plugin = fake / "failing"
    plugin.write_text('#!/bin/sh\necho \'{"code": 7, "msg": "no luck", "details": "for $CNI_CONTAINERID"}\'\nexit 1\n')
    plugin.chmod(0o755)
    conflist = {"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "failing"}]}
    with pytest.raises(errdefs.Internal, match="failing for .c9.: no luck"):
        cni.add(conflist, container_id="c9", netns="/nonexistent", bin_dirs=[str(fake)])
    with pytest.raises(errdefs.NotFound, match="missing"):
        cni.add({"plugins": [{"type": "missing"}]}, container_id="c", netns="/x", bin_dirs=[str(fake)])
    assert cni.addresses({"ips": [{"address": "10.1.2.3/24"}, {"address": "fd00::2/64"}]}) == ["10.1.2.3", "fd00::2"]
