"""Task networking: a pinned netns per task (pyroute2), --net-host, and --cni with the Debian plugins."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from actors.network import cni, netns
from tests.runtime.helpers import Runtime, busybox_rootfs, needs_runc, wait_for
from wire import errdefs

CNI_BIN = "/usr/lib/cni"
needs_cni = pytest.mark.skipif(not os.path.exists(f"{CNI_BIN}/bridge"),
                               reason="needs containernetworking-plugins (apt-get install containernetworking-plugins)")


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="module")
def cni_env(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("cni")
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    data_dir = tmp_path / "ipam"
    bridge = f"dyt{os.getpid() % 100000}"
    conflist = cni.default_conflist(name="dockyard-test", bridge=bridge, subnet="10.231.0.0/24",
                                    data_dir=str(data_dir))
    (conf_dir / "10-dockyard.conflist").write_text(json.dumps(conflist))
    yield {"conf_dir": conf_dir, "data_dir": data_dir, "bridge": bridge, "conflist": conflist}
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        for index in ip.link_lookup(ifname=bridge):
            ip.link("del", index=index)


@pytest.fixture(scope="module")
def shared(tmp_path_factory, rootfs, cni_env):
    from tests.support.daemon import Daemon

    config = {"plugins": {"io.dockyard.runtime.v1.task": {
        "cni_conf_dir": str(cni_env["conf_dir"]), "cni_bin_dirs": [CNI_BIN]}}}
    r = Runtime(Daemon(tmp_path_factory.mktemp("dockyard") / "d", config=config), rootfs)
    r.daemon.start()
    try:
        yield r
    finally:
        left = r.cleanup()
        assert not left, f"left behind: {left}"


@pytest.fixture
def rt(shared, cni_env):
    yield shared
    (cni_env["conf_dir"] / "10-dockyard.conflist").write_text(json.dumps(cni_env["conflist"]))
    left = shared.reset()
    assert not left, f"left behind: {left}"


def test_netns_create_remove(tmp_path):
    path = str(tmp_path / "netns" / "one")
    netns.create(path)
    try:
        with pytest.raises(errdefs.AlreadyExists):
            netns.create(path)
        from pyroute2 import NetNS

        with NetNS(path) as ns:
            links = {link.get_attr("IFLA_IFNAME"): link for link in ns.get_links()}
        assert list(links) == ["lo"] and links["lo"]["flags"] & 1  # IFF_UP
    finally:
        netns.remove(path)
    assert not os.path.exists(path)
    with open("/proc/self/mountinfo") as fh:
        assert str(tmp_path) not in fh.read()
    netns.remove(path)  # twice is fine


@needs_runc
def test_task_gets_private_netns_with_loopback_unless_host(rt):
    r = rt.run("n1", "sh", "-c", "ip -o link; readlink /proc/self/ns/net", flags=("--rm",))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 2 and "lo:" in lines[0] and "UP" in lines[0]
    assert lines[1] != os.readlink("/proc/self/ns/net")
    r = rt.run("n2", "readlink", "/proc/self/ns/net", flags=("--rm", "--net-host"))
    assert r.stdout.decode().strip() == os.readlink("/proc/self/ns/net")
    assert not (rt.daemon.state / "netns").exists() or not list((rt.daemon.state / "netns").iterdir())


@needs_runc
@needs_cni
def test_cni_container_serves_tcp_to_the_host_and_frees_its_address(rt, cni_env):
    rt.detached("web", "nc", "-ll", "-p", "8080", "-e", "echo", "hello from dockyard", flags=("--cni",))
    network = rt.network("web")
    (address,) = network["addresses"]
    assert address.startswith("10.231.0.")
    assert (cni_env["data_dir"] / "dockyard-test" / address).exists()

    def answer():
        try:
            with socket.create_connection((address, 8080), timeout=2) as s:
                return s.recv(100)
        except OSError:
            return b""

    assert wait_for(answer, 10, "the container to answer") == b"hello from dockyard\n"
    netns_path = network["netns"]
    assert os.path.exists(netns_path)
    rt.cli("tasks", "rm", "-f", "web")
    assert not (cni_env["data_dir"] / "dockyard-test" / address).exists()
    assert not os.path.exists(netns_path)
    rt.cli("containers", "rm", "web")


@needs_runc
@needs_cni
def test_cni_failure_undoes_the_create(rt, cni_env):
    conf = cni_env["conf_dir"] / "10-dockyard.conflist"
    bad = json.loads(conf.read_text())
    bad["plugins"][0]["type"] = "no-such-plugin"
    conf.write_text(json.dumps(bad))
    r = rt.run("broken", "true", flags=("--rm", "--cni"))
    assert r.returncode == 1 and b"no-such-plugin" in r.stderr
    assert rt.daemon.call("Tasks.List") == {"tasks": []}
    assert not rt.bundles()
