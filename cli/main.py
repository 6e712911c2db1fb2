"""``dockyard``: a ctr-style CLI over the daemon's msgpack-RPC socket.

Synchronous and quick to start: nothing on this path imports Trio.  Each command
module registers its sub-commands; business logic stays in the daemon and in the
smart-client libraries, never here.
"""

from __future__ import annotations

import argparse
import sys

from wire import errdefs

from .context import Context

COMMAND_MODULES = (
    "cli.commands.version",
    "cli.commands.plugins",
    "cli.commands.namespaces",
    "cli.commands.events",
    "cli.commands.call",
    "cli.commands.images",
    "cli.commands.snapshots",
    "cli.commands.content",
    "cli.commands.leases",
    "cli.commands.gc",
    "cli.commands.containers", "cli.commands.tasks", "cli.commands.run",
)


# Command word (and aliases) → module, so one invocation imports only the module it runs.
# A word not listed here falls back to loading every module of COMMAND_MODULES.
COMMAND_WORDS = {
    "version": "cli.commands.version",
    "plugins": "cli.commands.plugins", "plugin": "cli.commands.plugins",
    "namespaces": "cli.commands.namespaces", "namespace": "cli.commands.namespaces",
    "ns": "cli.commands.namespaces",
    "events": "cli.commands.events", "event": "cli.commands.events",
    "call": "cli.commands.call",
    "images": "cli.commands.images", "image": "cli.commands.images", "i": "cli.commands.images",
    "content": "cli.commands.content",
    "leases": "cli.commands.leases", "lease": "cli.commands.leases",
    "containers": "cli.commands.containers", "container": "cli.commands.containers", "c": "cli.commands.containers",
    "tasks": "cli.commands.tasks", "task": "cli.commands.tasks", "t": "cli.commands.tasks", "run": "cli.commands.run",
}
GLOBAL_FLAGS_WITH_VALUE = {"--address", "-a", "--namespace", "-n", "--timeout", "--format", "--lease"}


def command_word(argv: list[str]) -> str | None:
    """The first positional word of ``argv`` (skipping global flags and their values)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in GLOBAL_FLAGS_WITH_VALUE:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


class Parser(argparse.ArgumentParser):
    """argparse, minus its ``import shutil`` (with bz2 and lzma: ~5 ms on every command).

    argparse builds a help formatter for each argument it adds, and the formatter
    asks shutil for the terminal width; here ``os`` answers, with shutil's rules
    (COLUMNS, then the terminal, then 80).  Sub-parsers inherit the class.
    """

    def _get_formatter(self):
        return self.formatter_class(prog=self.prog, width=_help_width())


def _help_width() -> int:
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2  # argparse's margin on shutil's width


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    p = Parser(prog="dockyard", description="Talk to dockyardd, the way ctr talks to containerd.")
    p.add_argument("--address", "-a", help="daemon socket (env DOCKYARD_ADDRESS, default /run/dockyard/dockyard.sock)")
    p.add_argument("--namespace", "-n", help="namespace (env DOCKYARD_NAMESPACE, default 'default')")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for each request")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--lease", default=None, help="lease that holds what this command creates")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    word = command_word(argv) if argv is not None else None
    modules = [COMMAND_WORDS[word]] if word in COMMAND_WORDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    ctx = Context(args)
    try:
        code = args.run(ctx, args)
        return 0 if code is None else code
    except errdefs.DockyardError as exc:
        print(f"dockyard: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        ctx.close()


if __name__ == "__main__":
    sys.exit(main())
