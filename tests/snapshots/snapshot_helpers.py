"""Small helpers shared by the snapshot tests."""

import os

import pytest

from actors.mount import temp_mount

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for mounts")


def state(sn):
    """Everything observable about a snapshotter: records and storage dirs."""
    infos = []
    sn.walk(infos.append)
    return (
        sorted((i.name, i.kind, i.parent, tuple(sorted(i.labels.items())), i.created, i.updated) for i in infos),
        sorted(os.listdir(sn.snapshots_dir)),
    )


def storage_entries(sn):
    return sorted(os.listdir(sn.snapshots_dir))


def write_files(mounts, tmp_path, files=(), delete=()):
    """Mount ``mounts``, write ``files`` {relpath: bytes}, delete ``delete``."""
    with temp_mount(mounts, parent_dir=str(tmp_path)) as root:
        for rel, data in dict(files).items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        for rel in delete:
            os.remove(os.path.join(root, rel))


def read_tree(mounts, tmp_path):
    """{relpath: bytes} of every regular file seen through ``mounts``."""
    out = {}
    with temp_mount(mounts, parent_dir=str(tmp_path)) as root:
        for dirpath, _, names in os.walk(root):
            for name in names:
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    out[os.path.relpath(path, root)] = f.read()
    return out


def build_chain(sn, tmp_path, depth, prefix="layer"):
    """Commit ``depth`` layers, layer i writing file ``f<i>``; returns names."""
    names = []
    parent = ""
    for i in range(depth):
        key = f"{prefix}-{i}-active"
        mounts = sn.prepare(key, parent)
        write_files(mounts, tmp_path, {f"f{i}": f"layer {i}".encode()})
        name = f"{prefix}-{i}"
        sn.commit(name, key)
        names.append(name)
        parent = name
    return names
