"""``dockyard gc`` (collect now), ``gc --dry-run`` (list what would go), ``gc explain KIND ID``."""

from __future__ import annotations

from cli.output import table, to_json

KINDS = ("content", "snapshot", "image", "lease", "ingest", "container", "sandbox")


def register(sub) -> None:
    p = sub.add_parser("gc", help="collect garbage now, list what would go, or explain why something is kept")
    p.add_argument("--dry-run", action="store_true", help="list what a collection would remove; remove nothing")
    p.set_defaults(run=run_collect)
    s = p.add_subparsers(dest="gc_command")
    e = s.add_parser("explain", help="print the chain of references from a root that keeps an object")
    e.add_argument("kind", choices=KINDS)
    e.add_argument("id", help="digest, <snapshotter>/<key>, image name, lease id, ingest ref or container id")
    e.set_defaults(run=run_explain)
    st = s.add_parser("stats", help="the scheduler's counters and the last run")
    st.set_defaults(run=run_stats)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run_collect(ctx, args) -> None:
    report = ctx.call("GC.Collect", {"dry_run": bool(args.dry_run)})
    if ctx.json:
        to_json(report)
        return
    if args.dry_run:
        rows = [[r["kind"], r["namespace"], r["id"]] for r in report["removed"]]
        rows += [["backend " + r["kind"], "-", r["id"]] for r in report["backend"]]
        table(["KIND", "NAMESPACE", "ID"], rows)
        return
    counts = report["counts"]
    records = ", ".join(_plural(n, k) for k, n in sorted(counts.items()) if not k.startswith("backend ")) or "nothing"
    backend = ", ".join(_plural(n, k[len("backend "):]) for k, n in sorted(counts.items())
                        if k.startswith("backend ")) or "nothing"
    print(f"removed records: {records}; backend: {backend} "
          f"({report['duration'] * 1000:.1f} ms, pause {report['pause'] * 1000:.1f} ms)")


def run_explain(ctx, args) -> int:
    answer = ctx.call("GC.Explain", {"kind": args.kind, "id": args.id})
    if ctx.json:
        to_json(answer)
        return 0
    if not answer["kept"]:
        print(f"{args.kind} {args.id}: {answer['reason']}")
        return 0
    print(f"{args.kind} {args.id} is kept by:")
    for i, step in enumerate(answer["chain"]):
        arrow = "  " if i == 0 else "  -> "
        print(f"{arrow}{step['kind']} {step['id']}  ({step['via']})")
    return 0


def run_stats(ctx, args) -> None:
    stats = ctx.call("GC.Stats")
    to_json(stats)
