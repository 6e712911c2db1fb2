"""The snapshots CLI's formatting helpers, against ctr 1.6's output."""

from __future__ import annotations

from cli.commands.snapshots import _rfc3339_nano, human_size, info_json, mount_commands, tree_lines


def test_human_size_as_ctr_prints_it():
    assert human_size(0) == "0.0 B"
    assert human_size(4096) == "4.0 KiB"
    assert human_size(8192) == "8.0 KiB"
    assert human_size(1536 * 1024) == "1.5 MiB"
    assert human_size(3 * 1024 ** 3) == "3.0 GiB"


def test_rfc3339_nano_trims_trailing_zeros():
    assert _rfc3339_nano(1_795_848_147_249_271_143) == "2026-11-28T06:42:27.249271143Z"
    assert _rfc3339_nano(1_795_848_147_730_000_000) == "2026-11-28T06:42:27.73Z"
    assert _rfc3339_nano(1_795_848_147_000_000_000) == "2026-11-28T06:42:27Z"


def test_mount_commands():
    mounts = [{"type": "bind", "source": "/s/1/fs", "target": "", "options": ["rw", "rbind"]},
              {"type": "tmpfs", "source": "tmpfs", "target": "run", "options": []}]
    assert mount_commands("/mnt/x", mounts) == [
        "mount -t bind /s/1/fs /mnt/x -o rw,rbind",
        "mount -t tmpfs tmpfs /mnt/x/run -o ",
    ]


def test_tree_indents_children_under_parents():
    infos = [{"name": n, "parent": p} for n, p in
             [("c1", ""), ("a3", "c1"), ("a2", ""), ("v1", "c1"), ("deep", "a3"), ("orphan", "gone")]]
    assert tree_lines(infos) == [" a2", " c1", "  \\_ a3", "    \\_ deep", "  \\_ v1", " orphan"]


def test_info_json_shape():
    info = {"name": "a", "kind": "committed", "parent": "", "labels": {}, "created_at": 0, "updated_at": 1}
    assert list(info_json(info)) == ["Kind", "Name", "Created", "Updated"]
    assert info_json(info)["Kind"] == "Committed"
    info.update(parent="p", labels={"b": "2", "a": "1"})
    assert list(info_json(info)) == ["Kind", "Name", "Parent", "Labels", "Created", "Updated"]
