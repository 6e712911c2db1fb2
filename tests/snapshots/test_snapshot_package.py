"""The package's public names all come from its one __init__."""

import inspect

import actors.snapshots as snapshots
from actors.snapshots import Snapshotter


def test_public_names_are_exported_and_exist():
    assert sorted(snapshots.__all__) == sorted(set(snapshots.__all__))
    for name in snapshots.__all__:
        assert getattr(snapshots, name) is not None, name
    assert {"OverlaySnapshotter", "NativeSnapshotter", "Snapshotter", "Info", "Kind", "Usage"} <= set(
        snapshots.__all__)


def test_backends_implement_every_documented_method():
    abstract = {n for n, v in vars(Snapshotter).items() if getattr(v, "__isabstractmethod__", False)}
    assert abstract == {"stat", "update", "usage", "mounts", "prepare", "view", "commit", "remove",
                        "walk", "cleanup", "close"}
    for cls in (snapshots.OverlaySnapshotter, snapshots.NativeSnapshotter):
        assert not inspect.isabstract(cls)
        for name in abstract:
            assert inspect.getdoc(getattr(Snapshotter, name)), f"{name} lacks its contract"
