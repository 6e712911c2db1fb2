"""Snapshotter backends: overlayfs and native, each with a private store."""

from .copytree import copy_tree
from .interface import Snapshotter, WalkFilter
from .native import NativeSnapshotter
from .overlay import OverlaySnapshotter
from .types import Info, Kind, Usage
from .usage import disk_usage

__all__ = [
    "Info",
    "Kind",
    "NativeSnapshotter",
    "OverlaySnapshotter",
    "Snapshotter",
    "Usage",
    "WalkFilter",
    "copy_tree",
    "disk_usage",
]
