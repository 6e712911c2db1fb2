"""Mount values and the helpers that perform them (mount(2) via ctypes)."""

from .mounter import mount, mount_all, temp_mount, unmount, unmount_all
from .mountinfo import MountPoint, mounts_under, parse_mountinfo, read_mountinfo
from .options import MNT_DETACH, MNT_FORCE, ParsedOptions, parse_options
from .overlay import overlay_supports_index_option
from .types import Mount

__all__ = [
    "MNT_DETACH",
    "MNT_FORCE",
    "Mount",
    "MountPoint",
    "ParsedOptions",
    "mount",
    "mount_all",
    "mounts_under",
    "overlay_supports_index_option",
    "parse_mountinfo",
    "parse_options",
    "read_mountinfo",
    "temp_mount",
    "unmount",
    "unmount_all",
]
