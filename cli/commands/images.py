"""``dockyard images ls|check|rm|tag|label|import|export|mount|unmount``, as ctr's.

The image walks (platforms, sizes, check) are ``oci.imagecheck`` run here, in the
smart client, over ``Content.Read``/``Content.Info``; the daemon only stores.
"""

from __future__ import annotations

import os
import sys

from cli.output import table, to_json
from wire import errdefs

DEFAULT_SNAPSHOTTER = "overlayfs"
UPLOAD_CHUNK = 1 << 20


def register(sub) -> None:
    p = sub.add_parser("images", aliases=["image", "i"], help="manage images")
    s = p.add_subparsers(dest="images_command", required=True)

    ls = s.add_parser("ls", aliases=["list"], help="list images known to the daemon")
    ls.add_argument("--quiet", "-q", action="store_true", help="print only the image refs")
    ls.add_argument("filters", nargs="*")
    ls.set_defaults(run=run_ls)

    ck = s.add_parser("check", help="check existing images to ensure all content is available locally")
    ck.add_argument("--quiet", "-q", action="store_true", help="print only the ready image refs")
    ck.add_argument("--snapshotter", default=DEFAULT_SNAPSHOTTER)
    ck.add_argument("filters", nargs="*")
    ck.set_defaults(run=run_check)

    rm = s.add_parser("rm", aliases=["delete", "del", "remove"], help="remove one or more images by reference")
    rm.add_argument("--sync", action="store_true", help="synchronously remove image and all associated resources")
    rm.add_argument("names", nargs="+")
    rm.set_defaults(run=run_rm)

    tag = s.add_parser("tag", help="tag an image")
    tag.add_argument("--force", action="store_true", help="force target_ref to be created, even if it exists")
    tag.add_argument("source")
    tag.add_argument("targets", nargs="+")
    tag.set_defaults(run=run_tag)

    lb = s.add_parser("label", help="set and clear labels for an image (KEY= clears)")
    lb.add_argument("name")
    lb.add_argument("labels", nargs="*", metavar="KEY=VALUE")
    lb.set_defaults(run=run_label)

    im = s.add_parser("import", help="import images from an OCI layout or docker save tar (- for stdin)")
    im.add_argument("--base-name", default=None, help="base image name for added images, when provided "
                    "only images with this name prefix are imported")
    im.add_argument("--digests", action="store_true", help="whether to create digest images")
    im.add_argument("--skip-digest-for-named", action="store_true",
                    help="skip applying --digests option to images named in the importing tar")
    im.add_argument("--index-name", default="", help="image name to keep index as")
    im.add_argument("--all-platforms", action="store_true", help="import content for all platforms")
    im.add_argument("--platform", action="append", default=[], help="import content for a specific platform")
    im.add_argument("--no-unpack", action="store_true", help="skip unpacking the images")
    im.add_argument("--snapshotter", default=DEFAULT_SNAPSHOTTER)
    im.add_argument("file")
    im.set_defaults(run=run_import)

    ex = s.add_parser("export", help="export images to an OCI tar (- for stdout)")
    ex.add_argument("--platform", action="append", default=[], help="export content for a specific platform")
    ex.add_argument("--all-platforms", action="store_true", help="export content for all platforms")
    ex.add_argument("out")
    ex.add_argument("names", nargs="+")
    ex.set_defaults(run=run_export)

    mt = s.add_parser("mount", help="mount an image to a target path")
    mt.add_argument("--snapshotter", default=DEFAULT_SNAPSHOTTER)
    mt.add_argument("--rw", action="store_true", help="enable write support on the mount")
    mt.add_argument("--platform", default="", help="mount the image for the specified platform")
    mt.add_argument("name")
    mt.add_argument("target")
    mt.set_defaults(run=run_mount)

    um = s.add_parser("unmount", aliases=["umount"], help="unmount the image from the target")
    um.add_argument("--snapshotter", default=DEFAULT_SNAPSHOTTER)
    um.add_argument("--rm", action="store_true", help="remove the snapshot after a successful unmount")
    um.add_argument("target")
    um.set_defaults(run=run_unmount)

    from cli.commands.pull import register_images  # pull/push/fetch live in their own module

    register_images(s)


# -- reading content over RPC ---------------------------------------------------------------------


class RemoteContent:
    """``read_blob`` / ``exists`` for ``oci.imagecheck``, over the Content service (cached)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self._blobs: dict[str, bytes] = {}
        self._exists: dict[str, bool] = {}

    def read_blob(self, desc) -> bytes:
        data = self._blobs.get(desc.digest)
        if data is None:
            parts = [item["data"] for item in self.ctx.client.stream("Content.Read", {"digest": desc.digest})]
            data = self._blobs[desc.digest] = b"".join(parts)
        return data

    def exists(self, desc) -> bool:
        known = self._exists.get(desc.digest)
        if known is None:
            try:
                self.ctx.call("Content.Info", {"digest": desc.digest})
                known = True
            except errdefs.NotFound:
                known = False
            self._exists[desc.digest] = known
        return known


def _descriptor(target: dict):
    from oci.descriptor import Descriptor, Platform

    platform = target.get("platform")
    return Descriptor(
        media_type=target["media_type"], digest=target["digest"], size=target["size"],
        urls=tuple(target.get("urls") or ()), annotations=dict(target.get("annotations") or {}),
        platform=None if not platform else Platform(
            os=platform["os"], architecture=platform["architecture"], variant=platform.get("variant", ""),
            os_version=platform.get("os_version", "")),
    )


def _matcher(specs: list[str], all_platforms: bool):
    from oci import platforms

    if all_platforms:
        return platforms.all_platforms()
    if specs:
        parsed = [platforms.parse(s) for s in specs]
        return platforms.only(parsed[0]) if len(parsed) == 1 else platforms.any_of(parsed)
    return platforms.host_matcher()


def _list(ctx, filters: list[str]) -> list[dict]:
    return ctx.call("Images.List", {"filters": filters})["images"]


def _labels_cell(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


# -- commands ----------------------------------------------------------------------------------------


def run_ls(ctx, args) -> None:
    from oci import imagecheck, platforms

    images = _list(ctx, args.filters)
    if ctx.json:
        to_json(images)
        return
    if args.quiet:
        for image in images:
            print(image["name"])
        return
    remote = RemoteContent(ctx)
    matcher = platforms.host_matcher()
    rows = []
    for image in images:
        target = _descriptor(image["target"])
        try:
            size = imagecheck.format_bytes(imagecheck.size(target, matcher, remote.read_blob))
        except errdefs.DockyardError:
            size = "-"
        try:
            plats = ",".join(platforms.format(p) for p in imagecheck.image_platforms(target, remote.read_blob))
        except errdefs.DockyardError:
            plats = "-"
        rows.append([image["name"], target.media_type, target.digest, size, plats or "-",
                     _labels_cell(image["labels"])])
    table(["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"], rows)


def _unpacked(ctx, snapshotter: str, target, matcher, remote) -> bool:
    from oci import imagecheck

    try:
        manifest = imagecheck.manifest_for(target, matcher, remote.read_blob)
        chain = imagecheck.rootfs(manifest, remote.read_blob).chain_id
        ctx.call("Snapshots.Stat", {"snapshotter": snapshotter, "key": chain})
        return True
    except errdefs.DockyardError:
        return False


def run_check(ctx, args) -> None:
    from oci import imagecheck, platforms

    images = _list(ctx, args.filters)
    remote = RemoteContent(ctx)
    matcher = platforms.host_matcher()
    rows, report = [], []
    for image in images:
        target = _descriptor(image["target"])
        try:
            result = imagecheck.check(target, matcher, remote.read_blob, remote.exists)
            status = "complete" if result.complete else "incomplete"
            size = (f"{imagecheck.format_bytes(result.present_size)}/"
                    f"{imagecheck.format_bytes(result.required_size)}")
            missing = [d.digest for d in result.missing]
        except errdefs.DockyardError as exc:
            status, size, missing = "error", "-", [exc.message]
        unpacked = _unpacked(ctx, args.snapshotter, target, matcher, remote) if status == "complete" else False
        rows.append([image["name"], target.media_type, target.digest, status, size, str(unpacked).lower()])
        report.append({"name": image["name"], "status": status, "missing": missing, "unpacked": unpacked})
    if ctx.json:
        to_json(report)
    elif args.quiet:
        for row in rows:
            if row[3] == "complete":
                print(row[0])
    else:
        table(["REF", "TYPE", "DIGEST", "STATUS", "SIZE", "UNPACKED"], rows)


def run_rm(ctx, args) -> int:
    failed = 0
    for i, name in enumerate(args.names):
        last = i == len(args.names) - 1
        try:
            ctx.call("Images.Delete", {"name": name, "sync": bool(args.sync and last)})
            print(name)
        except errdefs.NotFound:
            print(f"dockyard: image {name!r}: not found", file=sys.stderr)
            failed += 1
        except errdefs.DockyardError as exc:
            print(f"dockyard: unable to delete {name}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def run_tag(ctx, args) -> None:
    source = ctx.call("Images.Get", {"name": args.source})["image"]
    for target in args.targets:
        image = {"name": target, "target": source["target"], "labels": source["labels"]}
        try:
            ctx.call("Images.Create", {"image": image})
        except errdefs.AlreadyExists:
            if not args.force:
                raise
            ctx.call("Images.Delete", {"name": target})
            ctx.call("Images.Create", {"image": image})
        print(target)


def run_label(ctx, args) -> None:
    from cli.args import parse_labels

    labels = parse_labels(args.labels)
    current = ctx.call("Images.Get", {"name": args.name})["image"]
    image = {"name": args.name, "target": current["target"], "labels": labels}
    updated = ctx.call("Images.Update", {"image": image, "update_mask": [f"labels.{k}" for k in labels]})["image"]
    print(",".join(f"{k}={v}" for k, v in sorted(updated["labels"].items())))


class _Progress:
    """Bytes sent so far, redrawn on stderr when it is a terminal."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.sent = 0
        self.enabled = sys.stderr.isatty()

    def update(self, n: int) -> None:
        from oci.imagecheck import format_bytes

        self.sent += n
        if self.enabled:
            total = f" / {format_bytes(self.total)}" if self.total else ""
            sys.stderr.write(f"\rimporting: {format_bytes(self.sent)}{total}   ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _UnpackWatcher:
    """On a terminal, print the daemon's ``/transfer/progress`` layer steps while an import runs."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.client = None
        self.thread = None

    def start(self) -> None:
        if not sys.stderr.isatty():
            return
        import threading

        from wire.client import Client

        self.client = Client(self.ctx.address, namespace=self.ctx.namespace).connect()
        filters = [f'topic=="/transfer/progress",namespace=="{self.ctx.namespace}"']
        events = self.client.stream("Events.Subscribe", {"filters": filters})

        def follow() -> None:
            try:
                for envelope in events:
                    step = envelope["event"]
                    if step.get("event") in ("extracted", "already exists"):
                        sys.stderr.write(f"\r{step['event']}: {step['name']}\n")
                        sys.stderr.flush()
            except (errdefs.DockyardError, OSError, ValueError):
                pass

        self.thread = threading.Thread(target=follow, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.client is not None:
            import socket

            try:
                self.client._sock.shutdown(socket.SHUT_RDWR)  # ends the follower's blocking read
            except OSError:
                pass
            self.thread.join(2)
            self.client.close()


def _read_chunks(fileobj, progress: _Progress):
    while chunk := fileobj.read(UPLOAD_CHUNK):
        progress.update(len(chunk))
        yield chunk


def run_import(ctx, args) -> None:
    params = {
        "base_name": args.base_name, "index_name": args.index_name, "digests": args.digests,
        "skip_digest_for_named": args.skip_digest_for_named, "all_platforms": args.all_platforms,
        "platforms": args.platform, "unpack": not args.no_unpack, "snapshotter": args.snapshotter,
    }
    if args.file == "-":
        source, total = sys.stdin.buffer, None
    else:
        source = open(args.file, "rb")
        total = os.fstat(source.fileno()).st_size
    progress = _Progress(total)
    watcher = _UnpackWatcher(ctx)
    watcher.start()
    try:
        result = ctx.client.upload("Transfer.Import", params, _read_chunks(source, progress), timeout=None)
    finally:
        progress.done()
        watcher.stop()
        if source is not sys.stdin.buffer:
            source.close()
    if ctx.json:
        to_json(result)
        return
    for image in result["images"]:
        if image["name"] in result["unpacked"]:
            print(f"unpacking {image['name']} ({image['target']['digest']})...done")


def run_export(ctx, args) -> None:
    params = {"names": args.names, "platforms": args.platform, "all_platforms": args.all_platforms}
    stream = ctx.client.stream("Transfer.Export", params)
    if args.out == "-":
        out, path = sys.stdout.buffer, None
    else:
        path = args.out
        out = open(path + ".tmp", "wb")
    try:
        for chunk in stream:
            out.write(chunk)
        out.flush()
    except BaseException:
        if path is not None:
            out.close()
            os.unlink(path + ".tmp")
        raise
    if path is not None:
        out.close()
        os.replace(path + ".tmp", path)


# -- mount / unmount ------------------------------------------------------------------------------


def _mount_lease_id(target: str) -> str:
    import hashlib

    return "mount-" + hashlib.sha256(target.encode()).hexdigest()[:32]


def run_mount(ctx, args) -> None:
    from actors.mount import Mount, mount_all
    from oci import imagecheck

    target = os.path.abspath(args.target)
    image = ctx.call("Images.Get", {"name": args.name})["image"]
    lease = _mount_lease_id(target)
    ctx.call("Leases.Create", {"id": lease, "labels": {
        "containerd.io/gc.expire": _in_24h(), f"containerd.io/gc.ref.snapshot.{args.snapshotter}": target}})
    try:
        ctx.call("Transfer.Unpack", {"name": args.name, "platform": args.platform,
                                     "snapshotter": args.snapshotter}, lease=lease)
        remote = RemoteContent(ctx)
        matcher = _matcher([args.platform] if args.platform else [], False)
        manifest = imagecheck.manifest_for(_descriptor(image["target"]), matcher, remote.read_blob)
        chain = imagecheck.rootfs(manifest, remote.read_blob).chain_id
        method = "Snapshots.Prepare" if args.rw else "Snapshots.View"
        reply = ctx.call(method, {"snapshotter": args.snapshotter, "key": target, "parent": chain}, lease=lease)
        mounts = [Mount(type=m["type"], source=m["source"], target=m.get("target", ""),
                        options=tuple(m.get("options") or ())) for m in reply["mounts"]]
        mount_all(mounts, target)
    except BaseException:
        _forget_mount(ctx, args.snapshotter, target, lease)
        raise
    print(target)


def run_unmount(ctx, args) -> None:
    from actors.mount import unmount_all

    target = os.path.abspath(args.target)
    unmount_all(target)
    _forget_mount(ctx, args.snapshotter, target, _mount_lease_id(target))
    print(target)


def _forget_mount(ctx, snapshotter: str, target: str, lease: str) -> None:
    for method, params in (("Snapshots.Remove", {"snapshotter": snapshotter, "key": target}),
                           ("Leases.Delete", {"id": lease})):
        try:
            ctx.call(method, params)
        except errdefs.NotFound:
            pass


def _in_24h() -> str:
    import datetime

    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=24)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
