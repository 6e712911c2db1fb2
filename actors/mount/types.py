"""The Mount value: what a snapshotter hands out and ``mount_all`` performs."""

from __future__ import annotations

import attrs


def _to_tuple(value) -> tuple[str, ...]:
    return tuple(value or ())


@attrs.frozen(kw_only=True)
class Mount:
    """One mount(2) call, containerd's ``mount.Mount``.

    ``type`` is the filesystem type (``bind``, ``overlay``, ...), ``source`` the
    device or directory, ``target`` an optional sub-path below the mount root
    given to ``mount_all`` (empty: the root itself), ``options`` fstab-style
    options (``ro``, ``rbind``, ``lowerdir=...``).
    """

    type: str
    source: str
    target: str = ""
    options: tuple[str, ...] = attrs.field(default=(), converter=_to_tuple)

    def readonly(self) -> bool:
        return "ro" in self.options
