import json

import pytest
from hypothesis import given, strategies as st

from oci import mediatypes as mt
from oci import platforms as P
from oci.descriptor import Descriptor, Platform
from oci.manifest import Index
from wire.errdefs import InvalidArgument, NotFound


def plat(spec):
    return P.parse(spec)


@pytest.mark.parametrize("spec, formatted", [
    ("linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64"),
    ("Linux/AMD64/v1", "linux/amd64"),
    ("linux/aarch64", "linux/arm64"),
    ("linux/arm64/v8", "linux/arm64"),
    ("linux/arm64/v9.0", "linux/arm64/v9"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/armhf", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"),
    ("linux/arm/6", "linux/arm/v6"),
    ("linux/i386", "linux/386"),
    ("macos/arm64", "darwin/arm64"),
    ("windows(10.0.17763)/amd64", "windows(10.0.17763)/amd64"),
    ("amd64", "linux/amd64"),
    ("linux/riscv64", "linux/riscv64"),
])
def test_parse_normalizes(spec, formatted):
    assert P.format(plat(spec)) == formatted


def test_single_os_takes_host_architecture():
    host = P.host_platform()
    assert plat("linux") == Platform(os="linux", architecture=host.architecture, variant=host.variant)


@pytest.mark.parametrize("spec", ["", "*", "linux/*", "nosuchthing", "linux/amd64/v2/x", "linux//amd64", "lin ux/amd64", "linux(1/amd64"])
def test_parse_rejects(spec):
    with pytest.raises(InvalidArgument):
        P.parse(spec)


def test_host_platform_is_normalized():
    host = P.host_platform()
    assert P.normalize(host) == host and host.os == "linux"


arches = st.sampled_from(["amd64", "x86_64", "arm64", "aarch64", "arm", "armhf", "386", "i386", "s390x", "ppc64le"])
variants = st.sampled_from(["", "v5", "v6", "v7", "v8", "v1", "v3", "v8.2"])


@given(st.sampled_from(["linux", "windows", "freebsd", "darwin"]), arches, variants,
       st.sampled_from(["", "10.0.17763.1"]))
def test_format_parse_round_trip(os_name, arch, variant, os_version):
    p = P.normalize(Platform(os=os_name, architecture=arch, variant=variant, os_version=os_version))
    assert P.normalize(p) == p
    assert P.parse(P.format(p)) == p


def order(matcher, specs):
    return sorted(specs, key=lambda s: matcher.rank(plat(s)) if matcher.match(plat(s)) else 99)


def test_amd64_prefers_lower_levels_then_386():
    m = P.only(plat("linux/amd64/v3"))
    assert [P.format(c) for c in m.candidates] == ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]
    assert not m.match(plat("linux/amd64/v4")) and not m.match(plat("linux/arm64"))
    assert order(m, ["linux/386", "linux/amd64", "linux/amd64/v2"]) == ["linux/amd64/v2", "linux/amd64", "linux/386"]
    assert [P.format(c) for c in P.only(plat("linux/amd64")).candidates] == ["linux/amd64", "linux/386"]


def test_arm64_falls_back_to_minor_variants_then_arm():
    m = P.only(plat("linux/arm64/v8.2"))
    assert [P.format(c) for c in m.candidates] == [
        "linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64",
        "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5",
    ]
    assert m.match(plat("linux/arm64/v8")) and not m.match(plat("linux/arm64/v8.3"))
    v9 = [P.format(c) for c in P.only(plat("linux/arm64/v9.1")).candidates]
    assert v9[:4] == ["linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64/v8.5"]
    assert v9[-5:] == ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]


def test_arm_falls_back_down_to_v5():
    m = P.only(plat("linux/arm/v7"))
    assert [P.format(c) for c in m.candidates] == ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    assert not m.match(plat("linux/arm/v8"))
    assert m.less(plat("linux/arm/v6"), plat("linux/arm/v5"))
    assert not m.less(plat("linux/arm/v5"), plat("linux/arm/v6"))


def test_any_of_and_all():
    m = P.any_of([plat("linux/amd64"), plat("linux/s390x")])
    assert m.match(plat("linux/s390x")) and not m.match(plat("linux/386"))
    assert not m.less(plat("linux/amd64"), plat("linux/s390x"))
    assert m.less(plat("linux/s390x"), plat("linux/386"))
    assert P.all_platforms().match(plat("windows/arm64"))


# -- choose_manifest -----------------------------------------------------------

def entry(digest_char, spec=None, media_type=mt.OCI_MANIFEST):
    return Descriptor(media_type=media_type, digest="sha256:" + digest_char * 64, size=10,
                      platform=None if spec is None else plat(spec))


def no_reads(desc):
    raise AssertionError(f"unexpected read of {desc.digest}")


def test_choose_manifest_takes_the_preferred_platform():
    index = Index(manifests=(entry("a", "linux/arm/v5"), entry("b", "linux/arm64"), entry("c", "linux/arm/v7"),
                             entry("d", "linux/amd64")))
    assert P.choose_manifest(index, P.only(plat("linux/arm64")), no_reads).digest[-1] == "b"
    assert P.choose_manifest(index, P.only(plat("linux/arm/v8")), no_reads).digest[-1] == "c"
    assert P.choose_manifest(index, P.only(plat("linux/amd64/v2")), no_reads).digest[-1] == "d"


def test_choose_manifest_resolves_missing_platform_through_config():
    configs = {"e": {"os": "linux", "architecture": "s390x"}, "f": {"os": "linux", "architecture": "amd64"}}
    blobs = {}
    for char, config in configs.items():
        config_bytes = json.dumps(config).encode()
        config_digest = "sha256:" + char * 63 + "0"
        blobs[config_digest] = config_bytes
        blobs["sha256:" + char * 64] = json.dumps({
            "schemaVersion": 2, "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [],
        }).encode()
    index = Index(manifests=(entry("e"), entry("f"), entry("a", "linux/386")))
    read = lambda desc: blobs[desc.digest]  # noqa: E731
    # the platform-less amd64 entry matches and is preferred over 386 once resolved
    assert P.choose_manifest(index, P.only(plat("linux/amd64")), read).digest[-1] == "f"
    with pytest.raises(NotFound, match="linux/arm64.*available: linux/s390x, linux/amd64, linux/386"):
        P.choose_manifest(index, P.only(plat("linux/arm64")), read)


def test_choose_manifest_searches_nested_indexes_and_keeps_order_stable():
    inner = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "c" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "arm64"}},
    ]}).encode()
    index = Index(manifests=(entry("a", "linux/amd64"), entry("b", None, mt.OCI_INDEX), entry("d", "linux/amd64")))
    read = lambda desc: inner  # noqa: E731
    assert P.choose_manifest(index, P.only(plat("linux/arm64")), read).digest[-1] == "c"
    assert P.choose_manifest(index, P.only(plat("linux/amd64")), read).digest[-1] == "a"


def test_choose_manifest_nothing_matches():
    index = Index(manifests=(entry("a", "windows/amd64"),))
    with pytest.raises(NotFound, match="available: windows/amd64"):
        P.choose_manifest(index, P.only(plat("linux/amd64")), no_reads)
