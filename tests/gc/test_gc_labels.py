"""containerd's GC label keys, read as its collector reads them."""

from hypothesis import given, strategies as st

from actors.gc import labels
from actors.gc.nodes import Node


def test_ref_keys_exact_or_with_a_dot_or_slash_suffix():
    found = dict((key, node) for node, key in labels.refs("ns", {
        "containerd.io/gc.ref.content": "sha256:a",
        "containerd.io/gc.ref.content.m.0": "sha256:b",
        "containerd.io/gc.ref.content/x": "sha256:c",
        "containerd.io/gc.ref.contentx": "sha256:no",
        "containerd.io/gc.ref.image": "img",
        "containerd.io/gc.ref.image.1": "img2",
        "containerd.io/gc.ref.snapshot.overlayfs": "chain",
        "containerd.io/gc.ref.snapshot.native/extra": "k2",
        "unrelated": "x",
    }))
    assert found == {
        "containerd.io/gc.ref.content": Node("content", "ns", "sha256:a"),
        "containerd.io/gc.ref.content.m.0": Node("content", "ns", "sha256:b"),
        "containerd.io/gc.ref.content/x": Node("content", "ns", "sha256:c"),
        "containerd.io/gc.ref.image": Node("image", "ns", "img"),
        "containerd.io/gc.ref.image.1": Node("image", "ns", "img2"),
        "containerd.io/gc.ref.snapshot.overlayfs": Node("snapshot", "ns", "overlayfs/chain"),
        "containerd.io/gc.ref.snapshot.native/extra": Node("snapshot", "ns", "native/k2"),
    }


def test_back_reference_keys():
    found = sorted(labels.back_refs("ns", {
        "containerd.io/gc.bref.container": "c1",
        "containerd.io/gc.bref.content.x": "sha256:a",
        "containerd.io/gc.bref.image/y": "img",
        "containerd.io/gc.bref.imagex": "no",
        "containerd.io/gc.bref.snapshot.overlayfs/extra": "key",
    }))
    assert found == sorted([
        (Node("container", "ns", "c1"), "containerd.io/gc.bref.container"),
        (Node("content", "ns", "sha256:a"), "containerd.io/gc.bref.content.x"),
        (Node("image", "ns", "img"), "containerd.io/gc.bref.image/y"),
        (Node("snapshot", "ns", "overlayfs/key"), "containerd.io/gc.bref.snapshot.overlayfs/extra"),
    ])


def test_root_label_is_a_prefix_match_as_containerd():
    assert labels.has_root_label({"containerd.io/gc.root": "2024-01-01T00:00:00Z"}) == "containerd.io/gc.root"
    assert labels.has_root_label({"containerd.io/gc.rootish": ""}) == "containerd.io/gc.rootish"
    assert labels.has_root_label({"containerd.io/gc.ref.content": "x"}) is None


def test_expiry_past_future_and_malformed():
    now = 1_700_000_000 * 10**9
    assert labels.expired({"containerd.io/gc.expire": "2000-01-01T00:00:00Z"}, now)
    assert not labels.expired({"containerd.io/gc.expire": "2999-01-01T00:00:00+02:00"}, now)
    assert not labels.expired({"containerd.io/gc.expire": "tomorrow"}, now)  # bad value: no expiry
    assert not labels.expired({}, now)


def test_go_durations():
    assert labels.parse_go_duration("1h30m") == 5400 * 10**9
    assert labels.parse_go_duration("-1.5s") == -1_500_000_000
    assert labels.parse_go_duration("300ms") == 300_000_000
    assert labels.parse_go_duration("0") == 0
    for bad in ("", "5", "1d", "h", "1h 2m"):
        assert labels.parse_go_duration(bad) is None


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["ns", "us", "ms", "s", "m", "h"]))
def test_go_duration_units(n, unit):
    scale = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}[unit]
    assert labels.parse_go_duration(f"{n}{unit}") == n * scale


def test_conditional_snapshot_references():
    refs = list(labels.conditional_refs("ns", {
        "containerd.io/gc.cond.snapshot.overlayfs": "usedat<1h,usedat>48h|key1",
        "containerd.io/gc.cond.snapshot.native": "nopipe",
        "containerd.io/gc.cond.snapshot/native/x": "usedat=1h,usedat<bad|k",
    }))
    assert [(n, k) for n, k, _ in refs] == [
        (Node("snapshot", "ns", "overlayfs/key1"), "containerd.io/gc.cond.snapshot.overlayfs")] * 2
    now = 100 * 3600 * 10**9
    recent, old = now - 10 * 10**9, now - 72 * 3600 * 10**9
    within_hour, older_than_two_days = refs[0][2], refs[1][2]
    assert within_hour(recent, now) and not within_hour(old, now)
    assert older_than_two_days(old, now) and not older_than_two_days(recent, now)
