"""``dockyard content ingest|get|ls|rm|label|active|info``, as ctr's.

``ingest`` of a regular file (``< file``) passes stdin's descriptor to the daemon,
which reads the file itself (no bytes cross the socket); from a pipe or a terminal
it streams stdin to ``Content.Write`` in 4 MiB chunks (one request, no per-chunk
round trips).  With ``--expected-digest`` an interrupted ingest of the same ref
resumes where the daemon says it stopped (the digest check at commit makes that
safe).  A progress bar goes to stderr when stderr is a terminal.
"""

from __future__ import annotations

import os
import stat
import sys
import time

from cli.args import parse_labels
from wire import errdefs

CHUNK = 4 << 20
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def register(sub) -> None:
    p = sub.add_parser("content", help="manage content")
    s = p.add_subparsers(dest="content_command", required=True)
    ing = s.add_parser("ingest", help="accept content into the store (from stdin)")
    ing.add_argument("--expected-size", type=int, default=0, help="validate against provided size")
    ing.add_argument("--expected-digest", default="", help="verify content against expected digest")
    ing.add_argument("ref", metavar="REF")
    ing.set_defaults(run=run_ingest)
    get = s.add_parser("get", help="get the data for an object")
    get.add_argument("digest", metavar="DIGEST")
    get.set_defaults(run=run_get)
    ls = s.add_parser("ls", aliases=["list"], help="list all blobs in the store")
    ls.add_argument("--quiet", "-q", action="store_true", help="print only the blob digest")
    ls.add_argument("filters", nargs="*", metavar="FILTER")
    ls.set_defaults(run=run_ls)
    rm = s.add_parser("rm", aliases=["delete", "del", "remove"], help="permanently delete one or more blobs")
    rm.add_argument("digests", nargs="+", metavar="DIGEST")
    rm.set_defaults(run=run_rm)
    lb = s.add_parser("label", help="add labels to content (KEY= removes a label)")
    lb.add_argument("digest", metavar="DIGEST")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    lb.set_defaults(run=run_label)
    act = s.add_parser("active", help="display active transfers")
    act.add_argument("filters", nargs="*", metavar="FILTER")
    act.set_defaults(run=run_active)
    info = s.add_parser("info", help="show a blob's record (digest, size, times, labels)")
    info.add_argument("digest", metavar="DIGEST")
    info.set_defaults(run=run_info)

    from cli.commands.pull import register_content  # pull/push/fetch live in their own module

    register_content(s)


# -- formatting as ctr does (go-units HumanSize / HumanDuration) ------------------------


def human_size(size: float) -> str:
    i = 0
    while size >= 1000 and i < len(_SIZE_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.4g}{_SIZE_UNITS[i]}"


def human_duration(seconds: float) -> str:
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def age(ns: int) -> str:
    return human_duration(max(0.0, time.time() - ns / 1e9))


def label_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


# -- ingest ---------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, ref: str, total: int) -> None:
        self.ref, self.total, self.done = ref, total, 0
        self.start = self.last = time.monotonic()

    def add(self, n: int, *, final: bool = False) -> None:
        self.show(self.done + n, final=final)

    def show(self, done: int, *, final: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not final and now - self.last < 0.1:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-6)
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "=" * int(frac * 30)
            line = f"{self.ref}: [{bar:<30}] {human_size(self.done)}/{human_size(self.total)}"
        else:
            line = f"{self.ref}: {human_size(self.done)}"
        sys.stderr.write(f"\r{line} {human_size(rate)}/s\033[K" + ("\n" if final else ""))
        sys.stderr.flush()


def _resume_offset(ctx, args, fd: int) -> int:
    """Where to start: the daemon's offset for this ref when it can be checked, else 0."""
    if not args.expected_digest:
        return 0  # nothing would catch a different stream behind an old prefix: start over
    try:
        status = ctx.call("Content.Status", {"ref": args.ref})["status"]
    except errdefs.NotFound:
        return 0
    offset = status["offset"]
    if not offset or (status.get("expected") not in (None, "", args.expected_digest)):
        return 0
    try:
        os.lseek(fd, offset, os.SEEK_CUR)  # the content starts where stdin stands
        return offset
    except OSError:
        pass
    left = offset  # a pipe: read past what the daemon already has
    while left:
        data = os.read(fd, min(CHUNK, left))
        if not data:
            raise errdefs.FailedPrecondition(
                f"ref {args.ref!r}: stdin ended before the {offset} bytes the daemon already holds")
        left -= len(data)
    return offset


PIPE_SIZE = 1 << 20  # asked of a stdin pipe (the default 64 KiB means 16 reads per MiB)


def _chunks(fd: int, progress: Progress | None):
    """Full CHUNK-sized views of one reused buffer (a pipe hands out 64 KiB at a time:
    each item is filled first).  Each view is valid until the next is asked for."""
    import fcntl

    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # not a pipe, or above the system's limit: plain reads still work
    view = memoryview(bytearray(CHUNK))
    while True:
        n = 0
        while n < CHUNK and (got := os.readv(fd, [view[n:]])):
            n += got
        if not n:
            break
        if progress is not None:
            progress.add(n)
        yield view[:n]
        if n < CHUNK:
            break  # end of input
    if progress is not None:
        progress.add(0, final=True)


UPLOAD_ID = 1
SEND_BUFFER = 4 << 20


def item_header(rid: int, size: int) -> bytes:
    """The frame of ``StreamItem(rid, <size bytes>)`` up to where the bytes start.

    msgpack: [2, "$item", [rid, bin32(size)]]; sent with sendmsg beside the
    chunk itself, so a 4 MiB chunk is never copied into a frame.
    """
    import msgpack

    return (b"\x93\x02\xa5$item\x92" + msgpack.packb(rid) + b"\xc6" + size.to_bytes(4, "big"))


def _send_all(sock, parts: list) -> None:
    views = [memoryview(p) for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


PROGRESS_POLL = 0.1  # seconds between Content.Status polls while the daemon reads a passed file


def upload_write(ctx, params: dict, chunks, *, fds: tuple[int, ...] = (), waiting=None) -> dict:
    """``Content.Write`` on a connection of its own, vectored and without frame copies.

    Stops sending as soon as the daemon answers early (AlreadyExists, a bad
    offset, ...), instead of streaming the rest of a large input for nothing.
    ``fds`` go with the request (SCM_RIGHTS); ``waiting()`` is called every
    ``PROGRESS_POLL`` seconds while the response is awaited.
    """
    import select
    import socket

    from wire import codec
    from wire.client import send_with_fds

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        try:
            sock.connect(ctx.address)
        except OSError as exc:
            raise errdefs.Unavailable(f"daemon at {ctx.address}: {exc.strerror or exc}") from None
        meta = codec.Metadata(namespace=ctx.namespace, lease=ctx.lease, fds=len(fds) or None)
        conn = codec.Connection()
        request = codec.Request(id=UPLOAD_ID, method="Content.Write", params=params, meta=meta)
        send_with_fds(sock, codec.encode(request), list(fds))
        for chunk in chunks:
            _send_all(sock, [item_header(UPLOAD_ID, len(chunk)), chunk])
            if select.select([sock], [], [], 0)[0]:
                break  # the daemon answered before the end: stop sending
        else:
            sock.sendall(codec.encode(codec.StreamEnd(id=UPLOAD_ID)))
        while True:
            for event in conn.events():
                if isinstance(event, codec.Response) and event.id == UPLOAD_ID:
                    if event.error is not None:
                        raise event.error
                    return event.result
                if isinstance(event, codec.Notification) and event.method == "$error":
                    raise errdefs.from_wire(event.params)
            if waiting is not None and not select.select([sock], [], [], PROGRESS_POLL)[0]:
                waiting()
                continue
            data = sock.recv(1 << 16)
            if not data:
                raise errdefs.Unavailable(f"daemon at {ctx.address} closed the connection")
            conn.receive_data(data)
    finally:
        sock.close()


def _is_regular_file(fd: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        return False


def _file_progress(ctx, ref: str, progress: Progress):
    """Redraw ``progress`` from the daemon's offset while it reads the passed file itself."""
    def poll() -> None:
        try:
            progress.show(ctx.call("Content.Status", {"ref": ref})["status"]["offset"])
        except errdefs.DockyardError:
            pass  # not started yet, or already committed
    return poll


def run_ingest(ctx, args) -> int:
    fd = sys.stdin.fileno()
    params = {"ref": args.ref, "expected": args.expected_digest}
    if args.expected_size:
        params["total"] = args.expected_size
    offset = _resume_offset(ctx, args, fd)
    params["offset"] = offset
    from_file = _is_regular_file(fd)
    progress = None
    if sys.stderr.isatty():
        total = args.expected_size
        if not total and from_file:
            total = max(0, os.fstat(fd).st_size - os.lseek(fd, 0, os.SEEK_CUR) + offset)
        progress = Progress(args.ref, total)
        progress.done = offset
    try:
        if from_file:  # the daemon reads the file itself: no bytes cross the socket
            waiting = None if progress is None else _file_progress(ctx, args.ref, progress)
            result = upload_write(ctx, {**params, "source_fd": 0}, (), fds=(fd,), waiting=waiting)
            if progress is not None:
                progress.show(result["offset"], final=True)
        else:
            result = upload_write(ctx, params, _chunks(fd, progress))
    except errdefs.AlreadyExists:
        return 0  # already in this namespace: that is success, as for ctr
    if ctx.json:
        from cli.output import to_json

        to_json(result)
    return 0


# -- the rest -----------------------------------------------------------------------------


def run_get(ctx, args) -> None:
    out = sys.stdout.buffer
    for item in ctx.client.stream("Content.Read", {"digest": args.digest}):
        out.write(item["data"])
    out.flush()


def run_ls(ctx, args) -> None:
    from cli.output import table, to_json

    infos = [info for batch in ctx.client.stream("Content.List", {"filters": args.filters})
             for info in batch["info"]]
    if ctx.json:
        to_json(infos)
    elif args.quiet:
        for info in infos:
            print(info["digest"])
    else:
        table(["DIGEST", "SIZE", "AGE", "LABELS"],
              [[i["digest"], human_size(i["size"]), age(i["created_at"]), label_text(i["labels"])] for i in infos])


def run_rm(ctx, args) -> int:
    failed = 0
    for digest in args.digests:
        try:
            ctx.call("Content.Delete", {"digest": digest})
        except errdefs.NotFound:
            continue  # as ctr: a blob that is not there is not an error
        except errdefs.DockyardError as exc:
            print(f"dockyard: unable to delete {digest}: {exc.message}", file=sys.stderr)
            failed += 1
            continue
        print(digest)
    return 1 if failed else 0


def run_label(ctx, args) -> None:
    from cli.output import to_json

    labels = parse_labels(args.labels, bare_is_true=True)
    result = ctx.call("Content.Update", {"digest": args.digest, "labels": labels,
                                         "update_mask": [f"labels.{k}" for k in labels]})
    info = result["info"]
    if ctx.json:
        to_json(info)
    else:
        print(",".join(f"{k}={v}" for k, v in sorted(info["labels"].items())))


def run_active(ctx, args) -> None:
    from cli.output import table, to_json

    statuses = ctx.call("Content.ListStatuses", {"filters": args.filters})["statuses"]
    if ctx.json:
        to_json(statuses)
        return
    table(["REF", "SIZE", "AGE"], [[s["ref"], human_size(s["offset"]), age(s["started_at"])] for s in statuses])


def run_info(ctx, args) -> None:
    from cli.output import to_json

    to_json(ctx.call("Content.Info", {"digest": args.digest})["info"])
