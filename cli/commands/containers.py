"""``dockyard containers create|ls|info|rm|label``, as ``ctr containers``."""

from __future__ import annotations

import sys

from cli.args import parse_labels
from cli.output import format_labels, table, to_json
from wire import errdefs


def register(sub) -> None:
    from cli.commands.run import add_container_flags, add_ref_id_args

    p = sub.add_parser("containers", aliases=["container", "c"], help="manage containers")
    s = p.add_subparsers(dest="containers_command", required=True)
    c = s.add_parser("create", help="create a container")
    add_container_flags(c)
    add_ref_id_args(c)
    c.set_defaults(run=run_create)
    ls = s.add_parser("ls", aliases=["list"], help="list containers")
    ls.add_argument("--quiet", "-q", action="store_true", help="print only the container id")
    ls.add_argument("filters", nargs="*")
    ls.set_defaults(run=run_ls)
    info = s.add_parser("info", help="get info about a container")
    info.add_argument("--spec", action="store_true", help="only display the spec")
    info.add_argument("id")
    info.set_defaults(run=run_info)
    rm = s.add_parser("rm", aliases=["delete", "del", "remove"], help="delete containers")
    rm.add_argument("--keep-snapshot", action="store_true", help="do not remove the snapshot")
    rm.add_argument("ids", nargs="+")
    rm.set_defaults(run=run_rm)
    lb = s.add_parser("label", help="set and clear labels for a container (KEY= clears)")
    lb.add_argument("id")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    lb.set_defaults(run=run_label)


def run_create(ctx, args) -> None:
    from cli.commands.run import create_container, split_ref_id

    ref, cid, cmd = split_ref_id(args)
    create_container(ctx, args, ref, cid, cmd)


def run_ls(ctx, args) -> None:
    containers = ctx.call("Containers.List", {"filters": args.filters})
    if ctx.json:
        to_json(containers)
    elif args.quiet:
        for c in containers:
            print(c["id"])
    else:
        table(["CONTAINER", "IMAGE", "RUNTIME"],
              [[c["id"], c["image"] or "-", c["runtime"]["name"]] for c in containers])


def run_info(ctx, args) -> None:
    record = ctx.call("Containers.Get", {"id": args.id})
    to_json(record["spec"] if args.spec else {
        "ID": record["id"], "Labels": record["labels"], "Image": record["image"],
        "Runtime": {"Name": record["runtime"]["name"], "Options": record["runtime"]["options"]},
        "SnapshotKey": record["snapshot_key"], "Snapshotter": record["snapshotter"],
        "CreatedAt": record["created_at"], "UpdatedAt": record["updated_at"],
        "Extensions": record["extensions"], "SandboxID": record["sandbox_id"], "Spec": record["spec"]})


def run_rm(ctx, args) -> int:
    from cli.commands.tasks import daemon_state, remove_fifo_dir

    failed = 0
    for cid in args.ids:
        try:
            try:
                process = ctx.call("Tasks.Get", {"container_id": cid})["process"]
            except errdefs.NotFound:
                process = None
            if process is not None:
                if process["status"] not in ("stopped", "created"):
                    raise errdefs.FailedPrecondition(f"cannot delete a non stopped container: {process['status']}")
                ctx.call("Tasks.Delete", {"container_id": cid})
                remove_fifo_dir(daemon_state(ctx), process)
            record = ctx.call("Containers.Get", {"id": cid})
            ctx.call("Containers.Delete", {"id": cid})
            if not args.keep_snapshot and record.get("snapshot_key") and record.get("snapshotter"):
                try:
                    ctx.call("Snapshots.Remove", {"snapshotter": record["snapshotter"], "key": record["snapshot_key"]})
                except errdefs.NotFound:
                    pass
        except errdefs.DockyardError as exc:
            print(f"dockyard: unable to delete {cid}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_label(ctx, args) -> None:
    labels = parse_labels(args.labels)
    record = ctx.call("Containers.Get", {"id": args.id})
    record = ctx.call("Containers.Update", {
        "container": {"id": args.id, "labels": labels, "runtime": record["runtime"], "spec": record["spec"]},
        "update_mask": [f"labels.{k}" for k in labels]})
    if not labels:
        print(format_labels(record["labels"]))
