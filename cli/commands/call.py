"""``dockyard call Service.Method [JSON|-]``: raw scripted admin.

JSON in (argument, or stdin with ``-``), JSON out; ``--msgpack`` writes the raw
msgpack result to stdout instead.  Streaming methods print one JSON item per line.
"""

import json
import sys

from wire import errdefs


def register(sub) -> None:
    p = sub.add_parser("call", help="call any daemon method with JSON parameters")
    p.add_argument("method", help="Service.Method, e.g. Namespaces.List")
    p.add_argument("params", nargs="?", default="{}", help="JSON object of parameters, or - for stdin")
    p.add_argument("--stream", action="store_true", help="the method streams items: print each as a JSON line")
    p.add_argument("--msgpack", action="store_true", help="write the result as raw msgpack")
    p.set_defaults(run=run)


def run(ctx, args) -> None:
    text = sys.stdin.read() if args.params == "-" else args.params
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errdefs.InvalidArgument(f"parameters are not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise errdefs.InvalidArgument("parameters must be a JSON object")
    if args.stream:
        for item in ctx.client.stream(args.method, params, timeout=None):
            _emit(item, args, pretty=False)
        return
    _emit(ctx.call(args.method, params), args, pretty=True)


def _emit(value, args, *, pretty: bool) -> None:
    if args.msgpack:
        import msgpack

        sys.stdout.buffer.write(msgpack.packb(value, use_bin_type=True))
        sys.stdout.buffer.flush()
        return
    from cli.output import to_json

    to_json(value, pretty=pretty)
    sys.stdout.flush()
