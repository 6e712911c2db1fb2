"""The bundle: ``<state>/io.dockyard.runtime.v1.task/<ns>/<id>/`` (0700; parents 0711).

Files: ``config.json`` (the OCI spec), ``rootfs/`` (mount point), ``options.json``
(runtime options for the shim), ``shim-binary-path``, ``bootstrap.json`` (the
shim's address, written after ``start``), ``io.json`` (the init's stdio paths),
``network.json`` (what the daemon set
up for the task's network, to undo it), and the shim's own files.  What a
restarted daemon reads to find its shims again.  Plain sync functions: call
them in a worker thread.
"""

from __future__ import annotations

import json
import os
import shutil

import attrs

from actors.mount import unmount_all
from wire import errdefs

CONFIG = "config.json"
OPTIONS = "options.json"
BINARY = "shim-binary-path"
BOOTSTRAP = "bootstrap.json"
NETWORK = "network.json"
IO = "io.json"
ROOTFS = "rootfs"


@attrs.frozen(kw_only=True)
class Bundle:
    root: str  # <state>/io.dockyard.runtime.v1.task
    namespace: str
    id: str

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.namespace, self.id)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def rootfs(self) -> str:
        return self.file(ROOTFS)

    # -- writing ----------------------------------------------------------------

    def create(self, spec: dict, options: dict) -> None:
        """Make the directory and write config.json and options.json (AlreadyExists if present)."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        os.makedirs(os.path.join(self.root, self.namespace), mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            raise errdefs.AlreadyExists(f"bundle {self.path}: already exists") from None
        os.mkdir(self.rootfs, 0o711)
        self.write_json(CONFIG, spec)
        self.write_json(OPTIONS, options)

    def write_json(self, name: str, value: dict) -> None:
        self.write_text(name, json.dumps(value, sort_keys=True))

    def write_text(self, name: str, text: str) -> None:
        tmp = self.file(f".{name}.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, self.file(name))

    # -- reading ----------------------------------------------------------------

    def read_json(self, name: str) -> dict | None:
        try:
            with open(self.file(name)) as fh:
                return json.load(fh)
        except FileNotFoundError:
            return None
        except ValueError:
            raise errdefs.DataLoss(f"bundle {self.path}: {name} is not valid JSON") from None

    def read_text(self, name: str) -> str | None:
        try:
            with open(self.file(name)) as fh:
                return fh.read().strip()
        except FileNotFoundError:
            return None

    # -- removal ----------------------------------------------------------------

    def remove(self) -> None:
        """Unmount the rootfs (recursively), then rename to ``.<id>`` and delete."""
        if not os.path.isdir(self.path):
            return
        unmount_rootfs(self.rootfs)
        hidden = os.path.join(self.root, self.namespace, f".{self.id}")
        try:
            os.rename(self.path, hidden)
        except FileNotFoundError:
            return
        shutil.rmtree(hidden, ignore_errors=True)
        try:
            os.rmdir(os.path.join(self.root, self.namespace))
        except OSError:
            pass


def unmount_rootfs(path: str) -> None:
    """Unmount everything at or under ``path`` (deepest first)."""
    if os.path.isdir(path):
        unmount_all(path)


def scan(root: str) -> list[Bundle]:
    """Every bundle under ``root`` (names starting with '.' are half-removed: skipped)."""
    found = []
    try:
        namespaces = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for ns in namespaces:
        if ns.startswith("."):
            continue
        ns_dir = os.path.join(root, ns)
        if not os.path.isdir(ns_dir):
            continue
        for cid in sorted(os.listdir(ns_dir)):
            if cid.startswith("."):
                shutil.rmtree(os.path.join(ns_dir, cid), ignore_errors=True)
                continue
            found.append(Bundle(root=root, namespace=ns, id=cid))
    return found
