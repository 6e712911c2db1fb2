"""Test helpers: a busybox rootfs, a minimal OCI runtime spec, and bundle directories."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

BUSYBOX = "/bin/busybox"
TASK_DIR = "io.dockyard.runtime.v1.task"


def busybox_rootfs(path: Path) -> Path:
    """A plain directory holding a static busybox and its applet links."""
    bin_dir = path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, bin_dir / "busybox")
    for applet in ("sh", "sleep", "cat", "echo", "true", "false", "ls", "kill", "tty", "stty", "head", "yes", "dd"):
        os.symlink("busybox", bin_dir / applet)
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        (path / d).mkdir(exist_ok=True)
    return path


def minimal_spec(args: list[str], *, terminal: bool = False, env: list[str] | None = None,
                 annotations: dict[str, str] | None = None, memory_limit: int | None = None,
                 readonly: bool = False) -> dict:
    """A small valid OCI runtime spec: pid/ipc/uts/mount namespaces and the standard mounts."""
    linux: dict = {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore", "/proc/keys"],
        "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
    }
    if memory_limit is not None:
        linux["resources"] = {"memory": {"limit": memory_limit, "swap": memory_limit}}
    caps = ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_NET_BIND_SERVICE", "CAP_DAC_OVERRIDE"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env or ["PATH=/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "shimtest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "annotations": annotations or {},
        "linux": linux,
    }


def make_bundle(state: Path, namespace: str, cid: str, spec: dict, *, rootfs_src: Path | None = None,
                runc_root: Path, group: str | None = None) -> Path:
    """``<state>/io.dockyard.runtime.v1.task/<ns>/<id>`` with config.json and options.json.

    With ``rootfs_src`` the rootfs dir stays empty (the shim bind-mounts it);
    without, a busybox tree is written straight into it.
    """
    bundle = state / TASK_DIR / namespace / cid
    bundle.mkdir(parents=True)
    os.chmod(bundle, 0o700)
    rootfs = bundle / "rootfs"
    if rootfs_src is None:
        busybox_rootfs(rootfs)
    else:
        rootfs.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec))
    options = {"binary_name": "runc", "root": str(runc_root), "systemd_cgroup": False}
    if group:
        options["group"] = group
    (bundle / "options.json").write_text(json.dumps(options))
    return bundle
