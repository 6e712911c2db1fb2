"""Helpers shared by the content store tests."""

import hashlib
import os

from actors.content import LocalStore


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_files(store: LocalStore) -> dict[str, bytes]:
    """Every file under blobs/, as {"<alg>:<name>": bytes}."""
    found = {}
    for alg in sorted(os.listdir(store.blobs_root)):
        for name in os.listdir(os.path.join(store.blobs_root, alg)):
            with open(os.path.join(store.blobs_root, alg, name), "rb") as f:
                found[f"{alg}:{name}"] = f.read()
    return found


def tree(path) -> set[str]:
    """Every path below ``path`` (relative), for "nothing else touched" checks."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), path))
    return out


def commit_bytes(store: LocalStore, ref: str, data: bytes) -> str:
    with store.writer(ref, total=len(data)) as w:
        w.write(data)
        return w.commit(len(data), sha256(data))
