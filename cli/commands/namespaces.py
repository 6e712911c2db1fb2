"""``dockyard namespaces create|ls|rm|label``, as ctr's."""

import sys

from cli.args import parse_labels
from cli.output import format_labels, table, to_json
from wire import errdefs


def register(sub) -> None:
    p = sub.add_parser("namespaces", aliases=["namespace", "ns"], help="manage namespaces")
    s = p.add_subparsers(dest="ns_command", required=True)
    c = s.add_parser("create", aliases=["c"], help="create a namespace")
    c.add_argument("name")
    c.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    c.set_defaults(run=run_create)
    ls = s.add_parser("ls", aliases=["list"], help="list namespaces")
    ls.add_argument("--quiet", "-q", action="store_true", help="print only the names")
    ls.set_defaults(run=run_ls)
    rm = s.add_parser("rm", aliases=["remove"], help="remove namespaces (refused while they hold anything)")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(run=run_rm)
    lb = s.add_parser("label", help="set or clear labels (KEY= clears)")
    lb.add_argument("name")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    lb.set_defaults(run=run_label)


def run_create(ctx, args) -> None:
    ctx.call("Namespaces.Create", {"name": args.name, "labels": parse_labels(args.labels)})


def run_ls(ctx, args) -> None:
    namespaces = ctx.call("Namespaces.List")
    if ctx.json:
        to_json(namespaces)
    elif args.quiet:
        for ns in namespaces:
            print(ns["name"])
    else:
        table(["NAME", "LABELS"], [[ns["name"], format_labels(ns["labels"]) or ""] for ns in namespaces])


def run_rm(ctx, args) -> int:
    failed = 0
    for name in args.names:
        try:
            ctx.call("Namespaces.Delete", {"name": name})
            print(name)
        except errdefs.DockyardError as exc:
            print(f"dockyard: unable to delete {name}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_label(ctx, args) -> None:
    labels = parse_labels(args.labels)
    record = ctx.call("Namespaces.Update", {
        "name": args.name, "labels": labels, "update_mask": [f"labels.{k}" for k in labels]})
    if not labels:
        print(format_labels(record["labels"]))
