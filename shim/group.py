"""Which shim a container joins: its group key and the group's socket address.

group = option ``group`` (options.json), else the spec annotation
``io.dockyard.runc.v1.group``, else ``io.kubernetes.cri.sandbox-id``, else the id.
Socket = ``<state>/s/<hex sha256("<daemon socket>/<ns>/<group>")>`` where
``<state>`` is the daemon state dir the bundle lives in; when that path is too long
for a unix socket (deep test dirs) it is ``/run/dockyard-shim/<hex>`` instead.
"""

from __future__ import annotations

import json
import os

GROUP_ANNOTATION = "io.dockyard.runc.v1.group"
SANDBOX_ANNOTATION = "io.kubernetes.cri.sandbox-id"
TASK_DIR = "io.dockyard.runtime.v1.task"
FALLBACK_SOCKET_DIR = "/run/dockyard-shim"
SUN_PATH_MAX = 107  # usable bytes of sockaddr_un.sun_path

try:  # the builtin module: hashlib would load OpenSSL, ~10 ms of every start
    from _sha256 import sha256
except ImportError:  # pragma: no cover - other Python builds
    from hashlib import sha256


def read_json(path: str) -> dict:
    try:
        with open(path) as fh:
            value = json.load(fh)
    except FileNotFoundError:
        return {}
    return value if isinstance(value, dict) else {}


def group_of(bundle: str, cid: str) -> str:
    options = read_json(os.path.join(bundle, "options.json"))
    if options.get("group"):
        return str(options["group"])
    annotations = read_json(os.path.join(bundle, "config.json")).get("annotations") or {}
    return str(annotations.get(GROUP_ANNOTATION) or annotations.get(SANDBOX_ANNOTATION) or cid)


def state_dir(bundle: str, daemon_address: str) -> str:
    """The daemon state dir: ``<state>/io.dockyard.runtime.v1.task/<ns>/<id>`` → ``<state>``."""
    bundle = os.path.abspath(bundle)
    tasks = os.path.dirname(os.path.dirname(bundle))
    if os.path.basename(tasks) == TASK_DIR:
        return os.path.dirname(tasks)
    return os.path.dirname(os.path.abspath(_path_of(daemon_address)))


def socket_path(bundle: str, daemon_address: str, namespace: str, group: str) -> str:
    digest = sha256(f"{daemon_address}/{namespace}/{group}".encode()).hexdigest()
    path = os.path.join(state_dir(bundle, daemon_address), "s", digest)
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        path = os.path.join(FALLBACK_SOCKET_DIR, digest)
    return path


def _path_of(address: str) -> str:
    return address[len("unix://"):] if address.startswith("unix://") else address


def bootstrap(path: str) -> dict:
    return {"version": 3, "address": f"unix://{path}", "protocol": "msgpack-rpc"}
