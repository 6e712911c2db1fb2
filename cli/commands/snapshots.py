"""``dockyard snapshots [--snapshotter S] prepare|view|commit|rm|ls|info|mounts|usage|tree|label|diff``.

Output shapes are ctr 1.6's: ``ls`` KEY PARENT KIND, ``usage`` KEY SIZE INODES,
``mounts`` one ``mount -t ...`` command per mount, ``tree`` children indented
under parents, ``info`` indented JSON.  Like ctr, prepare/view/commit label what
they make ``containerd.io/gc.root`` so GC keeps it until it is removed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from cli.args import parse_labels
from cli.output import table, to_json
from oci.imagecheck import format_bytes
from wire import errdefs

GC_ROOT = "containerd.io/gc.root"
GC_EXPIRE = "containerd.io/gc.expire"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_KIND_WORD = {"active": "Active", "committed": "Committed", "view": "View"}


def register(sub) -> None:
    p = sub.add_parser("snapshots", aliases=["snapshot"], help="manage snapshots")
    p.add_argument("--snapshotter", default=None,
                   help="snapshotter name (env DOCKYARD_SNAPSHOTTER, default overlayfs)")
    s = p.add_subparsers(dest="snapshots_command", required=True)

    for name, run, what in (("prepare", run_prepare, "prepare a snapshot from a committed snapshot"),
                            ("view", run_view, "create a read-only snapshot from a committed snapshot")):
        c = s.add_parser(name, help=what)
        c.add_argument("--target", "-t", default="", help="mount target path: print the mount commands for it")
        c.add_argument("--mounts", action="store_true", help="print the snapshot's mounts as JSON")
        c.add_argument("key")
        c.add_argument("parent", nargs="?", default="")
        c.set_defaults(run=run)

    c = s.add_parser("commit", help="commit an active snapshot into the provided name")
    c.add_argument("key", help="name of the committed snapshot")
    c.add_argument("active", help="key of the active snapshot")
    c.set_defaults(run=run_commit)

    c = s.add_parser("rm", aliases=["delete", "del", "remove"], help="remove snapshots")
    c.add_argument("keys", nargs="+")
    c.set_defaults(run=run_rm)

    c = s.add_parser("ls", aliases=["list"], help="list snapshots")
    c.add_argument("filters", nargs="*", help="filters (kind, name, parent, labels.<k>)")
    c.set_defaults(run=run_ls)

    c = s.add_parser("info", help="get info about a snapshot")
    c.add_argument("key")
    c.set_defaults(run=run_info)

    c = s.add_parser("mounts", aliases=["m", "mount"], help="print the mount commands for a snapshot")
    c.add_argument("target")
    c.add_argument("key")
    c.set_defaults(run=run_mounts)

    c = s.add_parser("usage", help="disk usage of snapshots")
    c.add_argument("-b", dest="bytes", action="store_true", help="display size in bytes")
    c.add_argument("keys", nargs="*")
    c.set_defaults(run=run_usage)

    c = s.add_parser("tree", help="display tree view of snapshot branches")
    c.set_defaults(run=run_tree)

    c = s.add_parser("label", help="set or clear labels of a snapshot (KEY= clears)")
    c.add_argument("name")
    c.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    c.set_defaults(run=run_label)

    c = s.add_parser("diff", help="write the diff of two snapshots to stdout "
                                  "(the second defaults to the first one's parent)")
    c.add_argument("--media-type", default=LAYER_GZIP, help=f"media type of the diff (default {LAYER_GZIP})")
    c.add_argument("--ref", default="", help="content upload reference to use")
    c.add_argument("--keep", action="store_true", help="keep the diff content (labelled containerd.io/gc.root)")
    c.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="labels for the diff content")
    c.add_argument("id_a")
    c.add_argument("id_b", nargs="?", default="")
    c.set_defaults(run=run_diff)


# -- helpers --------------------------------------------------------------------------------


def _snapshotter(args) -> str:
    return args.snapshotter or os.environ.get("DOCKYARD_SNAPSHOTTER") or "overlayfs"


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _rfc3339_nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


#: ctr's progress.Bytes (one decimal, binary units), shared with the images commands
human_size = format_bytes


def mount_commands(target: str, mounts: list[dict]) -> list[str]:
    lines = []
    for m in mounts:
        point = os.path.join(target, m["target"]) if m.get("target") else target
        lines.append(f"mount -t {m['type']} {m['source']} {point} -o {','.join(m.get('options') or [])}")
    return lines


def _print_mounts_json(mounts: list[dict]) -> None:
    shaped = []
    for m in mounts:
        item = {"Type": m["type"], "Source": m["source"]}
        if m.get("target"):
            item["Target"] = m["target"]
        item["Options"] = list(m.get("options") or [])
        shaped.append(item)
    sys.stdout.write(json.dumps(shaped, indent=4) + "\n")


def _list(ctx, snapshotter: str, filters: list[str] = ()) -> list[dict]:
    return list(ctx.client.stream("Snapshots.List", {"snapshotter": snapshotter, "filters": list(filters)},
                                  timeout=ctx.timeout))


# -- commands -------------------------------------------------------------------------------


def _create(ctx, args, method: str) -> None:
    reply = ctx.call(method, {"snapshotter": _snapshotter(args), "key": args.key, "parent": args.parent,
                              "labels": {GC_ROOT: _now_rfc3339()}})
    mounts = reply["mounts"]
    if args.target:
        for line in mount_commands(args.target, mounts):
            print(line)
    if args.mounts:
        _print_mounts_json(mounts)


def run_prepare(ctx, args) -> None:
    _create(ctx, args, "Snapshots.Prepare")


def run_view(ctx, args) -> None:
    _create(ctx, args, "Snapshots.View")


def run_commit(ctx, args) -> None:
    ctx.call("Snapshots.Commit", {"snapshotter": _snapshotter(args), "name": args.key, "key": args.active,
                                  "labels": {GC_ROOT: _now_rfc3339()}})


def run_rm(ctx, args) -> None:
    for key in args.keys:
        try:
            ctx.call("Snapshots.Remove", {"snapshotter": _snapshotter(args), "key": key})
        except errdefs.DockyardError as exc:
            raise type(exc)(f"failed to remove {key!r}: {exc.message}") from None


def run_ls(ctx, args) -> None:
    infos = _list(ctx, _snapshotter(args), args.filters)
    if ctx.json:
        to_json(infos)
        return
    table(["KEY", "PARENT", "KIND"], [[i["name"], i["parent"], _KIND_WORD.get(i["kind"], i["kind"])]
                                      for i in infos])


def info_json(info: dict) -> dict:
    """ctr's JSON shape of a snapshot info."""
    out = {"Kind": _KIND_WORD.get(info["kind"], info["kind"]), "Name": info["name"]}
    if info.get("parent"):
        out["Parent"] = info["parent"]
    if info.get("labels"):
        out["Labels"] = dict(sorted(info["labels"].items()))
    out["Created"] = _rfc3339_nano(info["created_at"])
    out["Updated"] = _rfc3339_nano(info["updated_at"])
    return out


def run_info(ctx, args) -> None:
    info = ctx.call("Snapshots.Stat", {"snapshotter": _snapshotter(args), "key": args.key})["info"]
    if ctx.json:
        to_json(info)
    else:
        sys.stdout.write(json.dumps(info_json(info), indent=4) + "\n")


def run_mounts(ctx, args) -> None:
    reply = ctx.call("Snapshots.Mounts", {"snapshotter": _snapshotter(args), "key": args.key})
    for line in mount_commands(args.target, reply["mounts"]):
        print(line)


def run_usage(ctx, args) -> None:
    snapshotter = _snapshotter(args)
    keys = args.keys or [i["name"] for i in _list(ctx, snapshotter)]
    usages = []
    for key in keys:
        u = ctx.call("Snapshots.Usage", {"snapshotter": snapshotter, "key": key})
        usages.append({"key": key, "size": u["size"], "inodes": u["inodes"]})
    if ctx.json:
        to_json(usages)
        return
    size = (lambda n: str(n)) if args.bytes else human_size
    table(["KEY", "SIZE", "INODES"], [[u["key"], size(u["size"]), str(u["inodes"])] for u in usages])


def tree_lines(infos: list[dict]) -> list[str]:
    """ctr's tree: roots at level 0 (" key"), children as "  \\_ key" one level deeper."""
    names = {i["name"] for i in infos}
    children: dict[str, list[str]] = {}
    roots = []
    for info in sorted(infos, key=lambda i: i["name"]):
        parent = info["parent"]
        if parent and parent in names:
            children.setdefault(parent, []).append(info["name"])
        else:
            roots.append(info["name"])
    lines: list[str] = []

    def walk(name: str, level: int) -> None:
        prefix = "  " * level + ("\\_" if level else "")
        lines.append(f"{prefix} {name}")
        for child in children.get(name, []):
            walk(child, level + 1)

    for root in roots:
        walk(root, 0)
    return lines


def run_tree(ctx, args) -> None:
    for line in tree_lines(_list(ctx, _snapshotter(args))):
        print(line)


def run_label(ctx, args) -> None:
    snapshotter = _snapshotter(args)
    labels = parse_labels(args.labels)
    if labels:
        info = ctx.call("Snapshots.Update", {
            "snapshotter": snapshotter, "info": {"name": args.name, "labels": labels},
            "update_mask": [f"labels.{k}" for k in labels]})["info"]
    else:
        info = ctx.call("Snapshots.Stat", {"snapshotter": snapshotter, "key": args.name})["info"]
    print(",".join(f"{k}={v}" for k, v in sorted(info["labels"].items())))


# -- diff -----------------------------------------------------------------------------------


class _Mounted:
    """The mounts of a snapshot for reading: an active/view as it is, a committed one through a view."""

    def __init__(self, ctx, snapshotter: str, key: str, lease: str) -> None:
        self.ctx, self.snapshotter, self.key, self.lease = ctx, snapshotter, key, lease
        self.view_key = ""

    def __enter__(self) -> list[dict]:
        info = self.ctx.call("Snapshots.Stat", {"snapshotter": self.snapshotter, "key": self.key})["info"]
        if info["kind"] != "committed":
            return self.ctx.call("Snapshots.Mounts", {"snapshotter": self.snapshotter, "key": self.key})["mounts"]
        import secrets

        self.view_key = f"{self.key}-view-{secrets.token_hex(6)}"
        return self.ctx.call("Snapshots.View", {"snapshotter": self.snapshotter, "key": self.view_key,
                                                "parent": self.key}, lease=self.lease)["mounts"]

    def __exit__(self, *exc) -> None:
        if self.view_key:
            self.ctx.call("Snapshots.Remove", {"snapshotter": self.snapshotter, "key": self.view_key})


def run_diff(ctx, args) -> None:
    snapshotter = _snapshotter(args)
    labels = parse_labels(args.label)
    if args.keep:
        labels[GC_ROOT] = _now_rfc3339()
    lease = ctx.lease
    temporary = not lease
    if temporary:  # as ctr: everything made here is held by a lease deleted at the end
        lease = ctx.call("Leases.Create", {"labels": {GC_EXPIRE: _in_24h()}})["lease"]["id"]
    try:
        params = {"media_type": args.media_type, "ref": args.ref, "labels": labels}
        if args.id_b:
            with _Mounted(ctx, snapshotter, args.id_a, lease) as left, \
                    _Mounted(ctx, snapshotter, args.id_b, lease) as right:
                desc = ctx.call("Diff.Diff", {**params, "left": left, "right": right}, lease=lease)["diff"]
        else:
            info = ctx.call("Snapshots.Stat", {"snapshotter": snapshotter, "key": args.id_a})["info"]
            with _Mounted(ctx, snapshotter, args.id_a, lease) as upper:
                if info["parent"]:
                    with _Mounted(ctx, snapshotter, info["parent"], lease) as lower:
                        desc = ctx.call("Diff.Diff", {**params, "left": lower, "right": upper}, lease=lease)["diff"]
                else:
                    desc = ctx.call("Diff.Diff", {**params, "left": [], "right": upper}, lease=lease)["diff"]
        out = sys.stdout.buffer
        for item in ctx.client.stream("Content.Read", {"digest": desc["digest"]}, timeout=ctx.timeout):
            out.write(item["data"])
        out.flush()
    finally:
        if temporary:
            ctx.call("Leases.Delete", {"id": lease})


def _in_24h() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 24 * 3600))
