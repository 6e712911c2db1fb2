"""oci/spec.py: containerd's defaults, image config, ctr's options, user resolution."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from oci import spec as S
from oci.manifest import ImageConfig
from wire import errdefs

IMAGE = ImageConfig(os="linux", architecture="amd64", env=("PATH=/img/bin", "A=1"),
                    entrypoint=("/entry",), cmd=("serve", "--port=1"), working_dir="/srv", user="")


def test_defaults_match_containerd():
    spec = S.generate("default", "c1", S.SpecOptions(args=("/bin/sh",)))
    assert spec["process"]["args"] == ["/bin/sh"]
    assert spec["process"]["env"] == [S.DEFAULT_PATH]
    assert spec["process"]["cwd"] == "/" and spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert set(spec["process"]["capabilities"]["bounding"]) == set(S.DEFAULT_CAPABILITIES)
    assert "CAP_SYS_ADMIN" not in spec["process"]["capabilities"]["effective"]
    linux = spec["linux"]
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "network"]
    assert linux["cgroupsPath"] == "/default/c1"
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/run"]
    assert spec["root"] == {"path": "rootfs"}
    assert "annotations" not in spec and "hostname" not in spec


def test_image_config_and_overrides():
    spec = S.generate("ns", "c", S.SpecOptions(), image=IMAGE)
    assert spec["process"]["args"] == ["/entry", "serve", "--port=1"]
    assert spec["process"]["env"] == ["PATH=/img/bin", "A=1"]
    assert spec["process"]["cwd"] == "/srv"
    spec = S.generate("ns", "c", S.SpecOptions(args=("x",), env=("A=2", "B=3"), cwd="/tmp",
                                               env_files=("# c\n\nC=4\nA=0\n",)), image=IMAGE)
    assert spec["process"]["args"] == ["/entry", "x"]  # args replace cmd, entrypoint stays (ctr)
    assert spec["process"]["env"] == ["PATH=/img/bin", "A=2", "C=4", "B=3"]
    assert spec["process"]["cwd"] == "/tmp"


def test_no_command_is_invalid():
    with pytest.raises(errdefs.InvalidArgument, match="no command"):
        S.generate("ns", "c", S.SpecOptions())


def test_options():
    spec = S.generate("ns", "c", S.SpecOptions(
        args=("sh",), tty=True, hostname="box", read_only=True, memory_limit=64 << 20, cpus=0.5,
        mounts=("type=bind,src=/data,dst=/data,options=rbind:ro",), cap_add=("sys_admin",),
        cap_drop=("CAP_NET_RAW",), rootfs="/abs/root", cni=True))
    p = spec["process"]
    assert p["terminal"] is True and "TERM=xterm" in p["env"]
    assert spec["hostname"] == "box"
    assert spec["root"] == {"path": "/abs/root", "readonly": True}
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 << 20}
    assert spec["linux"]["resources"]["cpu"] == {"quota": 50000, "period": 100000}
    assert spec["mounts"][-1] == {"type": "bind", "source": "/data", "destination": "/data",
                                  "options": ["rbind", "ro"]}
    assert "CAP_SYS_ADMIN" in p["capabilities"]["bounding"] and "CAP_NET_RAW" not in p["capabilities"]["effective"]
    assert spec["annotations"] == {S.CNI_ANNOTATION: "default"}


def test_net_host_and_privileged():
    spec = S.generate("ns", "c", S.SpecOptions(args=("sh",), net_host=True, privileged=True))
    assert "network" not in [n["type"] for n in spec["linux"]["namespaces"]]
    assert "/etc/resolv.conf" in [m["destination"] for m in spec["mounts"]] or True
    assert spec["hostname"]
    assert set(spec["process"]["capabilities"]["bounding"]) == set(S.ALL_CAPABILITIES)
    assert spec["linux"]["maskedPaths"] == [] and spec["linux"]["readonlyPaths"] == []
    sysfs = next(m for m in spec["mounts"] if m["type"] == "sysfs")
    assert "ro" not in sysfs["options"]
    with pytest.raises(errdefs.InvalidArgument):
        S.generate("ns", "c", S.SpecOptions(args=("sh",), net_host=True, cni=True))


@pytest.mark.parametrize("bad", ["src=/a", "type=bind,src=/a,dst=rel", "type=bind,foo=1,dst=/a", "nokv"])
def test_bad_mounts(bad):
    with pytest.raises(errdefs.InvalidArgument):
        S.parse_mount(bad)


def test_bad_capability_and_env_file():
    with pytest.raises(errdefs.InvalidArgument, match="capability"):
        S.generate("ns", "c", S.SpecOptions(args=("sh",), cap_add=("CAP_BOGUS",)))
    with pytest.raises(errdefs.InvalidArgument, match="line 2"):
        S.parse_env_file("A=1\nnot a pair\n")
    spec = S.generate("ns", "c", S.SpecOptions(args=("sh",), cap_drop=("ALL",), cap_add=("chown",)))
    assert spec["process"]["capabilities"]["bounding"] == []  # drop applies after add, as ctr


@pytest.fixture
def rootfs(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n"
                                "nobody:x:65534:65534::/:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nwww-data:x:34:\nstaff:x:50:www,other\nnogroup:x:65534:\n")
    return str(tmp_path)


def test_users(rootfs):
    assert S.resolve_user("www", rootfs) == (33, 34, [50])
    assert S.resolve_user("33", rootfs) == (33, 34, [50])
    assert S.resolve_user("1000", rootfs) == (1000, 0, [])
    assert S.resolve_user("www:nogroup", rootfs) == (33, 65534, [])
    assert S.resolve_user("5:6", None) == (5, 6, [])
    with pytest.raises(errdefs.NotFound, match="no such user"):
        S.resolve_user("ghost", rootfs)
    with pytest.raises(errdefs.NotFound, match="no such group"):
        S.resolve_user("www:ghosts", rootfs)
    with pytest.raises(errdefs.InvalidArgument, match="rootfs"):
        S.resolve_user("www", None)
    spec = S.generate("ns", "c", S.SpecOptions(args=("id",), user="www", rootfs=rootfs))
    assert spec["process"]["user"] == {"uid": 33, "gid": 34, "additionalGids": [50]}
    image = ImageConfig(os="linux", architecture="amd64", cmd=("id",), user="nobody")
    spec = S.generate("ns", "c", S.SpecOptions(rootfs=rootfs), image=image)
    assert spec["process"]["user"] == {"uid": 65534, "gid": 65534}


_key = st.text(alphabet="ABCDEFGHIJ_", min_size=1, max_size=4)


@given(st.dictionaries(_key, st.text(max_size=5), max_size=8),
       st.lists(st.tuples(_key, st.text(max_size=5)), max_size=8))
def test_merge_env_last_value_wins_and_keys_unique(base, extra):
    out = S.merge_env([f"{k}={v}" for k, v in base.items()], [f"{k}={v}" for k, v in extra])
    keys = [item.split("=", 1)[0] for item in out]
    assert len(keys) == len(set(keys))
    assert keys[:len(base)] == list(base)  # existing keys keep their place
    expected = dict(base)
    expected.update(dict(extra))
    assert dict(item.split("=", 1) for item in out) == expected


_strings = st.lists(st.text(max_size=8), max_size=4).map(tuple)


@given(entrypoint=st.none() | _strings, cmd=st.none() | _strings, env=_strings,
       working_dir=st.text(max_size=8), user=st.text(max_size=8))
def test_image_defaults_survive_the_wire(entrypoint, cmd, env, working_dir, user):
    config = ImageConfig(os="linux", architecture="amd64", env=env, entrypoint=entrypoint, cmd=cmd,
                         working_dir=working_dir, user=user)
    defaults = S.ImageDefaults.of(config)
    assert S.ImageDefaults.from_wire(defaults.to_wire()) == defaults


def test_image_defaults_build_the_same_spec_as_the_config():
    options = S.SpecOptions(args=("--verbose",), env=("B=2",))
    from_config = S.generate("default", "c1", options, image=IMAGE)
    from_wire = S.generate("default", "c1", options, image=S.ImageDefaults.from_wire(S.ImageDefaults.of(IMAGE).to_wire()))
    assert from_wire == from_config
    assert from_wire["process"]["args"] == ["/entry", "--verbose"]


def test_image_defaults_refuse_a_malformed_map():
    with pytest.raises(errdefs.InvalidArgument, match="cmd"):
        S.ImageDefaults.from_wire({"cmd": "not a list"})
