"""``dockyard images pull|push`` and ``dockyard content fetch``: registries, through the daemon.

The daemon does the work (``Transfer.Pull``, ``Transfer.Push``, ``Content.Fetch``)
and streams its progress steps; this module only shows them: a live table of
per-blob bars, total and speed on a terminal (stderr), plain lines otherwise.
Credentials (``--user U[:P]``, prompted for when the password is missing and
stdin is a terminal) travel in the request and are never printed.

``images.py`` and ``content.py`` call ``register_images`` / ``register_content``
to add these sub-commands to their parsers.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from cli.output import to_json

BAR_WIDTH = 40
REDRAW_INTERVAL = 0.1
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _registry_flags(p, *, platforms: bool = True) -> None:
    p.add_argument("--plain-http", action="store_true", help="allow connections using plain HTTP")
    p.add_argument("--user", "-u", default=None, help="user[:password] registry user and password")
    p.add_argument("--hosts-dir", default="", help="custom hosts configuration directory (hosts.toml)")
    if platforms:
        p.add_argument("--platform", action="append", default=[], help="pull content from a specific platform")


def register_images(s) -> None:
    """Add ``pull`` and ``push`` to the ``images`` sub-command parser ``s``."""
    pl = s.add_parser("pull", help="pull an image from a remote")
    _registry_flags(pl)
    pl.add_argument("--all-platforms", action="store_true", help="pull content and metadata from all platforms")
    pl.add_argument("--unpack", action=argparse.BooleanOptionalAction, default=True,
                    help="unpack the image for the host platform (default) or not")
    pl.add_argument("--snapshotter", default="", help="snapshotter to unpack into (default: the daemon's)")
    pl.add_argument("--max-concurrent-downloads", type=int, default=0,
                    help="blobs fetched at once (default: the daemon's, 3)")
    pl.add_argument("ref")
    pl.set_defaults(run=run_pull)

    ps = s.add_parser("push", help="push an image to a remote")
    _registry_flags(ps)
    ps.add_argument("--chunk-size", type=int, default=-1,
                    help="upload blobs in chunks of this many bytes (0: one request; default: the daemon's)")
    ps.add_argument("--max-concurrent-uploaded-layers", type=int, default=0,
                    help="blobs uploaded at once (default: the daemon's, 3)")
    ps.add_argument("ref", help="remote reference")
    ps.add_argument("local", nargs="?", default="", help="local image name (default: ref)")
    ps.set_defaults(run=run_push)


def register_content(s) -> None:
    """Add ``fetch`` to the ``content`` sub-command parser ``s``."""
    fe = s.add_parser("fetch", help="fetch all content for an image into the store (no unpack)")
    _registry_flags(fe)
    fe.add_argument("--all-platforms", action="store_true", help="fetch content from all platforms")
    fe.add_argument("ref")
    fe.set_defaults(run=run_fetch)


# -- commands -----------------------------------------------------------------


def _credentials(user: str | None) -> dict:
    if not user:
        return {}
    name, sep, secret = user.partition(":")
    if not sep and sys.stdin.isatty():
        import getpass

        secret = getpass.getpass("Password: ")
    return {"username": name, "secret": secret}


def _access(args) -> dict:
    return {"plain_http": args.plain_http, "hosts_dir": args.hosts_dir, **_credentials(args.user)}


def run_pull(ctx, args) -> None:
    params = {"ref": args.ref, "platforms": args.platform, "all_platforms": args.all_platforms,
              "unpack": args.unpack, "snapshotter": args.snapshotter,
              "max_concurrent_downloads": args.max_concurrent_downloads, **_access(args)}
    result = _run(ctx, "Transfer.Pull", params)
    if ctx.json:
        to_json(result)
        return
    print(f"{result['name']}: {result['target']['digest']}")
    if result.get("unpacked"):
        print(f"unpacked: {result['unpacked']}")


def run_push(ctx, args) -> None:
    params = {"ref": args.ref, "local": args.local, "platforms": args.platform, "chunk_size": args.chunk_size,
              "max_concurrent_uploads": args.max_concurrent_uploaded_layers, **_access(args)}
    result = _run(ctx, "Transfer.Push", params)
    if ctx.json:
        to_json(result)
        return
    print(f"{result['name']}: {result['target']['digest']} (uploaded {result['uploaded']}, "
          f"mounted {result['mounted']}, already there {result['existing']})")


def run_fetch(ctx, args) -> None:
    params = {"ref": args.ref, "platforms": args.platform, "all_platforms": args.all_platforms, **_access(args)}
    result = _run(ctx, "Content.Fetch", params)
    if ctx.json:
        to_json(result)
        return
    print(f"{result['name']}: {result['target']['digest']}")


def _run(ctx, method: str, params: dict) -> dict:
    """Call a progress-streaming method; show the steps; return its result."""
    display = LiveDisplay(sys.stderr) if sys.stderr.isatty() and not ctx.json else PlainDisplay(sys.stderr)
    try:
        return stream_with_result(ctx.client, method, params, display.update)
    finally:
        display.finish()


def stream_with_result(client, method: str, params: dict, on_item) -> dict:
    """A server stream whose items are shown and whose final response is returned."""
    with client.stream(method, params) as stream:
        for item in stream:
            on_item(item)
        return stream.result


# -- display ------------------------------------------------------------------


def human(n: float) -> str:
    for unit in _UNITS:
        if abs(n) < 1024 or unit == _UNITS[-1]:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f}"


def _is_blob(name: str) -> bool:
    return "-sha256:" in name or "-sha512:" in name


class _State:
    def __init__(self) -> None:
        self.items: dict[str, dict] = {}  # name → latest step, in order of first appearance
        self.moved: dict[str, int] = {}  # blob name → bytes transferred (download or upload)
        self.started = time.monotonic()

    def update(self, item: dict) -> dict | None:
        """Record ``item``; returns the previous step of its name."""
        previous = self.items.get(item["name"])
        self.items[item["name"]] = item
        if _is_blob(item["name"]) and item["event"] in ("downloading", "uploading", "complete"):
            self.moved[item["name"]] = item["progress"]
        return previous

    def transferred(self) -> int:
        return sum(self.moved.values())


class PlainDisplay:
    """One line per phase change: ``<name>: <event> <progress>/<total>``."""

    def __init__(self, out) -> None:
        self.out = out
        self.state = _State()

    def update(self, item: dict) -> None:
        previous = self.state.update(item)
        if previous is not None and previous["event"] == item["event"]:
            return  # a byte count: not worth a line
        size = f" {human(item['progress'])}/{human(item['total'])}" if item.get("total") else ""
        self.out.write(f"{item['name']}: {item['event']}{size}\n")
        self.out.flush()

    def finish(self) -> None:
        elapsed = time.monotonic() - self.state.started
        self.out.write(f"elapsed: {elapsed:.1f} s\ttotal: {human(self.state.transferred())}\n")
        self.out.flush()


class LiveDisplay:
    """ctr's live table: a line per blob with a bar, then elapsed, total and speed."""

    def __init__(self, out) -> None:
        self.out = out
        self.state = _State()
        self.lines = 0
        self.drawn_at = 0.0

    def update(self, item: dict) -> None:
        previous = self.state.update(item)
        changed_phase = previous is None or previous["event"] != item["event"]
        now = time.monotonic()
        if changed_phase or now - self.drawn_at >= REDRAW_INTERVAL:
            self.draw()

    def draw(self) -> None:
        self.drawn_at = time.monotonic()
        rows = []
        items = list(self.state.items.values())
        width = max((len(i["name"]) for i in items), default=0)
        for item in items:
            rows.append(f"{item['name']:<{width}}  {item['event']:<15} {self._bar(item)}")
        elapsed = max(self.drawn_at - self.state.started, 1e-6)
        moved = self.state.transferred()
        rows.append(f"elapsed: {elapsed:.1f} s   total: {human(moved)}   ({human(moved / elapsed)}/s)")
        columns = shutil.get_terminal_size((120, 24)).columns - 1  # a wrapped row would break the redraw
        text = "".join("\x1b[2K" + row[:columns] + "\n" for row in rows)
        if self.lines:
            text = f"\x1b[{self.lines}A" + text
        self.out.write(text)
        self.out.flush()
        self.lines = len(rows)

    @staticmethod
    def _bar(item: dict) -> str:
        total = item.get("total") or 0
        if not total or not _is_blob(item["name"]):
            return ""
        done = min(item["progress"], total)
        filled = int(BAR_WIDTH * done / total)
        return f"|{'+' * filled}{' ' * (BAR_WIDTH - filled)}| {human(done)}/{human(total)}"

    def finish(self) -> None:
        self.draw()

