"""``dockyard events [--since N] [FILTER...]``: follow the event stream.

Each line is ctr's: timestamp, namespace, topic, event JSON.  ``--format json``
prints whole envelopes (with their sequence number) one per line.
"""

import json
import sys

from cli.output import format_timestamp


def register(sub) -> None:
    p = sub.add_parser("events", aliases=["event"], help="display events (filters: topic==\"/tasks/exit\", ...)")
    p.add_argument("--since", type=int, default=None,
                   help="first replay kept events after sequence number N, then follow")
    p.add_argument("--seq", action="store_true", help="prefix each line with the envelope's sequence number")
    p.add_argument("filters", nargs="*")
    p.set_defaults(run=run)


def run(ctx, args) -> int:
    params = {"filters": args.filters}
    if args.since is not None:
        params["since"] = args.since
    out = sys.stdout
    for envelope in ctx.client.stream("Events.Subscribe", params, timeout=None):
        if ctx.json:
            out.write(json.dumps(envelope, sort_keys=True) + "\n")
        else:
            line = (f"{format_timestamp(envelope['timestamp'])} {envelope['namespace']} "
                    f"{envelope['topic']} {json.dumps(envelope['event'], sort_keys=True, separators=(',', ':'))}")
            out.write(f"{envelope['seq']} {line}\n" if args.seq else line + "\n")
        out.flush()
    return 0
