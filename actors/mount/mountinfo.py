"""Read /proc/self/mountinfo: which mount points exist, in mount order."""

from __future__ import annotations

import re

import attrs

MOUNTINFO = "/proc/self/mountinfo"

_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (``\\040`` for a space) in a path field."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@attrs.frozen(kw_only=True)
class MountPoint:
    mount_id: int
    parent_id: int
    mountpoint: str
    fstype: str
    source: str


def parse_mountinfo(text: str) -> list[MountPoint]:
    points = []
    for line in text.split("\n"):  # not splitlines: \r etc. may be in paths
        if not line.strip():
            continue
        head, _, tail = line.partition(" - ")
        fields = head.split(" ")
        rest = tail.split(" ")
        points.append(
            MountPoint(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                mountpoint=unescape(fields[4]),
                fstype=rest[0] if rest else "",
                source=unescape(rest[1]) if len(rest) > 1 else "",
            )
        )
    return points


def read_mountinfo(path: str = MOUNTINFO) -> list[MountPoint]:
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def mounts_under(root: str, points: list[MountPoint] | None = None) -> list[MountPoint]:
    """Mount points at ``root`` or below it, in the order they were mounted."""
    root = root.rstrip("/") or "/"
    prefix = root if root == "/" else root + "/"
    if points is None:
        points = read_mountinfo()
    return [p for p in points if p.mountpoint == root or p.mountpoint.startswith(prefix)]
