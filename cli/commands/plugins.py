"""``dockyard plugins ls [-d] [FILTER...]``: the plugin graph and how each plugin started."""

from cli.output import table, to_json


def register(sub) -> None:
    p = sub.add_parser("plugins", aliases=["plugin"], help="inspect the daemon's plugins")
    s = p.add_subparsers(dest="plugins_command", required=True)
    ls = s.add_parser("ls", aliases=["list"], help="list plugins")
    ls.add_argument("--detailed", "-d", action="store_true", help="show exports, capabilities and errors")
    ls.add_argument("filters", nargs="*")
    ls.set_defaults(run=run_ls)


def run_ls(ctx, args) -> None:
    plugins = ctx.call("Introspection.Plugins", {"filters": args.filters})
    if ctx.json:
        to_json(plugins)
        return
    if args.detailed:
        for p in plugins:
            print(f"Type:          {p['type']}")
            print(f"ID:            {p['id']}")
            print(f"Requires:      {', '.join(p['requires']) or '-'}")
            print(f"Status:        {p['status']}")
            if p["exports"]:
                print("Exports:")
                for k, v in sorted(p["exports"].items()):
                    print(f"               {k}  {v}")
            if p["capabilities"]:
                print(f"Capabilities:  {', '.join(p['capabilities'])}")
            if p["error"]:
                print(f"Error:         {p['error']}")
            print()
        return
    table(["TYPE", "ID", "PLATFORMS", "STATUS"],
          [[p["type"], p["id"], "-", p["status"]] for p in plugins])
