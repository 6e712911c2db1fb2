"""OCI runtime spec generation for the smart client (pure: no daemon, no Trio).

``generate(namespace, container_id, options, image=...)`` builds containerd's
default Linux spec (namespaces pid/ipc/uts/mount/network, the standard mounts,
the default capability set, masked and read-only paths, RLIMIT_NOFILE 1024,
no_new_privileges, cgroups path ``/<namespace>/<id>``), then applies the image
config (entrypoint, cmd, env, working dir, user) and the ``SpecOptions`` the
way ``ctr run`` does.  User names are resolved from ``<rootfs>/etc/passwd`` and
``/etc/group`` when a rootfs path is given; without one only numeric ids work.

Options are named tuples, not attrs classes or dataclasses: this module is on
the CLI's start-up path (``run``), where every import is paid per command
(``dataclasses`` alone pulls in inspect, ast and typing: ~8 ms).
"""

from __future__ import annotations

import os
from collections import namedtuple

from wire.errdefs import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only (see above)
    from typing import Any

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OCI_VERSION = "1.0.2-dev"

#: containerd's default capability set (oci.populateDefaultUnixSpec)
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

#: every capability Linux knows (numbered 0..40), for --privileged and "ALL"
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

#: annotation asking the daemon to attach the task's netns to the default CNI network
CNI_ANNOTATION = "io.dockyard.network.cni"

CPU_PERIOD = 100_000


def _default_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    ]


#: What ``run``/``containers create`` flags ask for, and the default of each (all optional).
_OPTION_DEFAULTS = {
    "args": (),  # replaces the image's cmd (entrypoint kept), as ctr does
    "env": (),  # KEY=VALUE, after the image's and env files'
    "env_files": (),  # contents of --env-file files (already read)
    "cwd": "",
    "user": "",  # name, uid, uid:gid, name:group
    "tty": False,
    "mounts": (),  # ctr's "type=bind,src=/a,dst=/b,options=rbind:ro"
    "net_host": False,
    "cni": False,
    "hostname": "",
    "read_only": False,
    "privileged": False,
    "cap_add": (),
    "cap_drop": (),
    "memory_limit": 0,  # bytes
    "cpus": 0.0,
    "rootfs": "",  # absolute path (ctr's --rootfs); else the bundle's "rootfs"
    "annotations": None,  # dict[str, str] or None
}


class SpecOptions(namedtuple("SpecOptions", _OPTION_DEFAULTS, defaults=_OPTION_DEFAULTS.values())):
    """What ``run``/``containers create`` flags ask for; fields and defaults in ``_OPTION_DEFAULTS``."""

    __slots__ = ()


def default_spec(namespace: str, container_id: str) -> dict[str, Any]:
    """containerd's default Linux spec for a container."""
    caps = list(DEFAULT_CAPABILITIES)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [],
            "env": [DEFAULT_PATH],
            "cwd": "/",
            "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs"},
        "mounts": _default_mounts(),
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "cgroupsPath": f"/{namespace}/{container_id}",
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


class ImageDefaults(namedtuple("ImageDefaults", ("entrypoint", "cmd", "env", "working_dir", "user"),
                                defaults=(None, None, (), "", ""))):
    """The process defaults a container takes from its image config; travels as a plain map.

    ``entrypoint``/``cmd`` are tuples, or None when the config leaves them unset.
    """

    __slots__ = ()

    @classmethod
    def of(cls, config: Any) -> "ImageDefaults":
        """From an ``oci.manifest.ImageConfig``."""
        return cls(entrypoint=config.entrypoint, cmd=config.cmd, env=tuple(config.env),
                   working_dir=config.working_dir, user=config.user)

    def to_wire(self) -> dict[str, Any]:
        return {"entrypoint": None if self.entrypoint is None else list(self.entrypoint),
                "cmd": None if self.cmd is None else list(self.cmd),
                "env": list(self.env), "working_dir": self.working_dir, "user": self.user}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> "ImageDefaults":
        def strings(key: str) -> tuple[str, ...] | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidArgument(f"image defaults: {key} must be a list of strings")
            return tuple(value)

        return cls(entrypoint=strings("entrypoint"), cmd=strings("cmd"), env=strings("env") or (),
                   working_dir=str(data.get("working_dir") or ""), user=str(data.get("user") or ""))


def generate(namespace: str, container_id: str, options: SpecOptions, *, image: Any = None) -> dict[str, Any]:
    """The OCI runtime spec for ``container_id`` from the defaults, ``image`` config and ``options``.

    ``image`` is anything with ``entrypoint``, ``cmd``, ``env``, ``working_dir``
    and ``user`` (``ImageDefaults``, ``oci.manifest.ImageConfig``), or None.
    """
    spec = default_spec(namespace, container_id)
    process = spec["process"]
    if image is not None:
        _apply_image(spec, image)
    if options.args:
        entry = list(getattr(image, "entrypoint", None) or []) if image is not None else []
        process["args"] = entry + list(options.args)
    if not process["args"]:
        raise InvalidArgument(f"container {container_id!r}: no command given and the image has none")
    for text in options.env_files:
        process["env"] = merge_env(process["env"], parse_env_file(text))
    process["env"] = merge_env(process["env"], list(options.env))
    if options.cwd:
        if not options.cwd.startswith("/"):
            raise InvalidArgument(f"cwd {options.cwd!r}: must be an absolute path")
        process["cwd"] = options.cwd
    if options.tty:
        process["terminal"] = True
        process["env"] = merge_env(process["env"], ["TERM=xterm"])
    if options.rootfs:
        if not os.path.isabs(options.rootfs):
            raise InvalidArgument(f"rootfs {options.rootfs!r}: must be an absolute path")
        spec["root"]["path"] = options.rootfs
    user = options.user or (getattr(image, "user", "") if image is not None else "")
    if user:
        uid, gid, extra = resolve_user(user, options.rootfs or None)
        process["user"] = {"uid": uid, "gid": gid, **({"additionalGids": extra} if extra else {})}
    if options.read_only:
        spec["root"]["readonly"] = True
    if options.hostname:
        spec["hostname"] = options.hostname
    for text in options.mounts:
        spec["mounts"].append(parse_mount(text))
    if options.net_host:
        _host_network(spec)
    if options.privileged:
        _privileged(spec)
    _capabilities(process, options.cap_add, options.cap_drop)
    resources = spec["linux"]["resources"]
    if options.memory_limit:
        if options.memory_limit < 0:
            raise InvalidArgument(f"memory limit {options.memory_limit}: must be positive")
        resources["memory"] = {"limit": int(options.memory_limit)}
    if options.cpus:
        if options.cpus < 0:
            raise InvalidArgument(f"cpus {options.cpus}: must be positive")
        resources["cpu"] = {"quota": int(options.cpus * CPU_PERIOD), "period": CPU_PERIOD}
    annotations = dict(options.annotations or {})
    if options.cni:
        if options.net_host:
            raise InvalidArgument("--cni and --net-host exclude each other")
        annotations[CNI_ANNOTATION] = "default"
    if annotations:
        spec["annotations"] = annotations
    return spec


def _apply_image(spec: dict, image: Any) -> None:
    process = spec["process"]
    process["env"] = merge_env(process["env"], list(getattr(image, "env", ()) or ()))
    entry = list(getattr(image, "entrypoint", None) or [])
    cmd = list(getattr(image, "cmd", None) or [])
    process["args"] = entry + cmd
    workdir = getattr(image, "working_dir", "") or ""
    if workdir:
        process["cwd"] = workdir


def merge_env(base: list[str], extra: list[str]) -> list[str]:
    """containerd's replaceOrAppendEnvValues: later KEY=... replace earlier ones, order kept."""
    out = list(base)
    index = {item.split("=", 1)[0]: i for i, item in enumerate(out)}
    for item in extra:
        if not item:
            continue
        key = item.split("=", 1)[0]
        if not key:
            raise InvalidArgument(f"environment entry {item!r}: empty name")
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def parse_env_file(text: str) -> list[str]:
    """KEY=VALUE lines; blank lines and ``#`` comments skipped (ctr's --env-file)."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line or line.startswith("="):
            raise InvalidArgument(f"env file line {number}: {line!r} is not KEY=VALUE")
        out.append(line)
    return out


def parse_mount(text: str) -> dict[str, Any]:
    """ctr's ``--mount type=bind,src=/a,dst=/b,options=rbind:ro``."""
    mount: dict[str, Any] = {"type": "", "source": "", "destination": "", "options": []}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise InvalidArgument(f"mount {text!r}: {part!r} is not key=value")
        if key == "type":
            mount["type"] = value
        elif key in ("source", "src"):
            mount["source"] = value
        elif key in ("destination", "dst", "target"):
            mount["destination"] = value
        elif key == "options":
            mount["options"] = [o for o in value.split(":") if o]
        else:
            raise InvalidArgument(f"mount {text!r}: unknown key {key!r}")
    if not mount["destination"].startswith("/"):
        raise InvalidArgument(f"mount {text!r}: destination must be an absolute path")
    if not mount["type"]:
        mount["type"] = "bind"
    if mount["type"] == "bind" and not any(o in ("bind", "rbind") for o in mount["options"]):
        mount["options"].append("rbind")
    return mount


def _host_network(spec: dict) -> None:
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    for path in ("/etc/hosts", "/etc/resolv.conf"):
        if os.path.exists(path):
            spec["mounts"].append({"destination": path, "type": "bind", "source": path,
                                   "options": ["rbind", "ro"]})
    spec.setdefault("hostname", os.uname().nodename)


def _privileged(spec: dict) -> None:
    caps = list(ALL_CAPABILITIES)
    spec["process"]["capabilities"] = {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
    linux = spec["linux"]
    linux["maskedPaths"] = []
    linux["readonlyPaths"] = []
    linux["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    for mount in spec["mounts"]:
        if mount["type"] == "sysfs":
            mount["options"] = [o for o in mount["options"] if o != "ro"]
    spec["process"]["noNewPrivileges"] = False


def normalize_capability(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in ALL_CAPABILITIES:
        raise InvalidArgument(f"capability {name!r}: unknown")
    return upper


def _capabilities(process: dict, add: tuple[str, ...], drop: tuple[str, ...]) -> None:
    if not add and not drop:
        return
    caps = list(process["capabilities"]["bounding"])
    for name in map(normalize_capability, add):
        for cap in (ALL_CAPABILITIES if name == "ALL" else (name,)):
            if cap not in caps:
                caps.append(cap)
    for name in map(normalize_capability, drop):
        caps = [] if name == "ALL" else [c for c in caps if c != name]
    process["capabilities"] = {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}


# -- users ---------------------------------------------------------------------------------


def _read_db(rootfs: str, name: str) -> list[list[str]]:
    path = os.path.join(rootfs, "etc", name)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [line.rstrip("\n").split(":") for line in fh if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def resolve_user(user: str, rootfs: str | None) -> tuple[int, int, list[int]]:
    """``name``, ``uid``, ``uid:gid``, ``name:group`` → (uid, gid, additional gids).

    Names need ``rootfs`` (its /etc/passwd and /etc/group); a bare uid takes its
    primary gid from /etc/passwd when there is one, else 0, as containerd does.
    """
    name, _, group = user.partition(":")
    if not name:
        raise InvalidArgument(f"user {user!r}: empty user")
    passwd = _read_db(rootfs, "passwd") if rootfs else []
    groups = _read_db(rootfs, "group") if rootfs else []
    uid: int | None = None
    gid: int | None = None
    username = ""
    if name.isdigit():
        uid = int(name)
        for entry in passwd:
            if len(entry) >= 4 and entry[2] == name:
                username, gid = entry[0], _int(entry[3])
                break
    else:
        if not rootfs:
            raise InvalidArgument(f"user {name!r}: names need the container's rootfs to resolve")
        for entry in passwd:
            if len(entry) >= 4 and entry[0] == name:
                username, uid, gid = name, _int(entry[2]), _int(entry[3])
                break
        if uid is None:
            raise NotFound(f"user {name!r}: no such user in {rootfs}/etc/passwd")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            if not rootfs:
                raise InvalidArgument(f"group {group!r}: names need the container's rootfs to resolve")
            found = [e for e in groups if len(e) >= 3 and e[0] == group]
            if not found:
                raise NotFound(f"group {group!r}: no such group in {rootfs}/etc/group")
            gid = _int(found[0][2])
    if gid is None:
        gid = 0
    extra: list[int] = []
    if username and not group:
        for entry in groups:
            if len(entry) >= 4 and username in entry[3].split(","):
                g = _int(entry[2])
                if g != gid and g not in extra:
                    extra.append(g)
    return uid, gid, extra


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"/etc/passwd or /etc/group: {text!r} is not a number") from None

