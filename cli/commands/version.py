"""``dockyard version``: client and server versions, as ``ctr version`` shows them."""

import sys

CLIENT_VERSION = "0.1.0"
PYTHON_VERSION = ".".join(map(str, sys.version_info[:3]))


def register(sub) -> None:
    p = sub.add_parser("version", help="print the client and server versions")
    p.set_defaults(run=run)


def run(ctx, args) -> None:
    server = ctx.call("Version.Version")
    info = ctx.call("Introspection.Server")
    if ctx.json:
        from cli.output import to_json

        to_json({"client": {"version": CLIENT_VERSION, "python": PYTHON_VERSION},
                 "server": {**server, "uuid": info["uuid"]}})
        return
    print("Client:")
    print(f"  Version:  {CLIENT_VERSION}")
    print("  Revision: ")
    print(f"  Python version: {PYTHON_VERSION}")
    print()
    print("Server:")
    print(f"  Version:  {server['version']}")
    print(f"  Revision: {server['revision']}")
    print(f"  UUID: {info['uuid']}")
