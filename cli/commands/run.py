"""``dockyard run [--rm] [-d] [-t] [spec options] IMAGE ID [ARGS...]``, as ``ctr run``.

The smart client does the work: it unpacks the image (``Transfer.Unpack``, which
also reports its chain ID and config defaults), prepares the snapshot (key =
container id, parent = the chain ID), builds the OCI spec (``oci.spec``), creates the
container and the task with FIFOs under ``<state>/fifo/<random>/``, forwards
signals, and exits with the container's exit status.  ``--rootfs`` runs a
directory instead of an image (the IMAGE argument is then omitted).
"""

from __future__ import annotations

import os
import sys

from wire import errdefs

DEFAULT_RUNTIME = "io.dockyard.runc.v1"
DEFAULT_SNAPSHOTTER = "overlayfs"


def register(sub) -> None:
    p = sub.add_parser("run", help="run a container")
    add_container_flags(p)
    p.add_argument("--rm", action="store_true", help="remove the container and its task after it exits")
    p.add_argument("--detach", "-d", action="store_true", help="do not wait for the task to exit")
    p.add_argument("--null-io", action="store_true", help="send all IO to /dev/null")
    add_ref_id_args(p)
    p.set_defaults(run=run_run)


def add_ref_id_args(p) -> None:
    import argparse

    p.add_argument("ref", metavar="IMAGE", help="image reference (with --rootfs: a directory)")
    p.add_argument("id", metavar="ID", help="container id")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="command and arguments")


def add_container_flags(p) -> None:
    p.add_argument("--tty", "-t", action="store_true", help="allocate a TTY for the container")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable")
    p.add_argument("--env-file", action="append", default=[], help="file of KEY=VALUE lines")
    p.add_argument("--cwd", default="", help="working directory in the container")
    p.add_argument("--user", "-u", default="", help="user[:group] (names need --rootfs)")
    p.add_argument("--mount", action="append", default=[], help="type=bind,src=/a,dst=/b,options=rbind:ro")
    p.add_argument("--net-host", action="store_true", help="use the host's network namespace")
    p.add_argument("--cni", action="store_true", help="attach the container to the default CNI network")
    p.add_argument("--hostname", default="", help="container hostname")
    p.add_argument("--read-only", action="store_true", help="read-only root filesystem")
    p.add_argument("--privileged", action="store_true", help="all capabilities, no masked paths, all devices")
    p.add_argument("--cap-add", action="append", default=[], help="add a capability (CAP_X or X)")
    p.add_argument("--cap-drop", action="append", default=[], help="drop a capability (ALL for all)")
    p.add_argument("--memory-limit", type=int, default=0, help="memory limit in bytes")
    p.add_argument("--cpus", type=float, default=0.0, help="CPU limit (e.g. 0.5)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="container label")
    p.add_argument("--annotation", action="append", default=[], metavar="KEY=VALUE", help="OCI annotation")
    p.add_argument("--runtime", default=DEFAULT_RUNTIME, help="runtime name")
    p.add_argument("--runtime-group", default="", help="share one shim with other containers of this group")
    p.add_argument("--snapshotter", default=os.environ.get("DOCKYARD_SNAPSHOTTER", DEFAULT_SNAPSHOTTER))
    p.add_argument("--platform", default="", help="image platform")
    p.add_argument("--rootfs", action="store_true", help="IMAGE is a root filesystem directory, not an image")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise errdefs.InvalidArgument(f"{what} {item!r} must be KEY=VALUE")
        out[key] = value
    return out


def split_ref_id(args) -> tuple[str, str, list[str]]:
    return args.ref, args.id, list(args.args)


def create_container(ctx, args, ref: str, cid: str, cmd: list[str]) -> dict:
    """Resolve, unpack and prepare; build the spec; create the container record. Returns it."""
    from oci import spec as specs

    env_files = []
    for path in args.env_file:
        with open(path, encoding="utf-8") as fh:
            env_files.append(fh.read())
    annotations = _pairs(args.annotation, "annotation")
    if args.runtime_group:
        annotations["io.dockyard.runc.v1.group"] = args.runtime_group
    options = dict(
        args=tuple(cmd), env=tuple(args.env), env_files=tuple(env_files), cwd=args.cwd, user=args.user,
        tty=args.tty, mounts=tuple(args.mount), net_host=args.net_host, cni=args.cni, hostname=args.hostname,
        read_only=args.read_only, privileged=args.privileged, cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop), memory_limit=args.memory_limit, cpus=args.cpus, annotations=annotations)
    container = {"id": cid, "labels": _pairs(args.label, "label"), "runtime": {"name": args.runtime}}
    if args.rootfs:
        rootfs = os.path.abspath(ref)
        if not os.path.isdir(rootfs):
            raise errdefs.NotFound(f"rootfs {rootfs}: not a directory")
        container["spec"] = specs.generate(ctx.namespace, cid, specs.SpecOptions(rootfs=rootfs, **options))
        return ctx.call("Containers.Create", {"container": container})
    lease = _temporary_lease(ctx)
    try:
        unpacked = unpack_image(ctx, ref, args.platform, args.snapshotter, lease)
        container["spec"] = specs.generate(ctx.namespace, cid, specs.SpecOptions(**options),
                                           image=specs.ImageDefaults.from_wire(unpacked["config"]))
        container.update(image=unpacked["image"]["name"], snapshotter=args.snapshotter, snapshot_key=cid)
        try:
            ctx.call("Snapshots.Prepare", {"snapshotter": args.snapshotter, "key": cid,
                                           "parent": unpacked["chain_id"]}, lease=lease)
        except errdefs.AlreadyExists:
            raise errdefs.AlreadyExists(f"snapshot {cid!r}: already exists") from None
        try:
            return ctx.call("Containers.Create", {"container": container})
        except BaseException:
            _quietly(ctx, "Snapshots.Remove", {"snapshotter": args.snapshotter, "key": cid})
            raise
    finally:
        if lease:
            _quietly(ctx, "Leases.Delete", {"id": lease})


def unpack_image(ctx, ref: str, platform: str, snapshotter: str, lease: str) -> dict:
    """``Transfer.Unpack`` of ``ref`` (as given, then normalized): chain ID, image record, config defaults.

    The daemon checks the image and reports what the container needs, so the
    client reads no manifest or config itself.  NotFound names ``ref`` when no
    such image exists; otherwise it is the daemon's (a missing blob, platform, ...).
    """
    params = {"platform": platform, "snapshotter": snapshotter}
    for name in _names(ref):
        try:
            return ctx.call("Transfer.Unpack", {"name": name, **params}, lease=lease)
        except errdefs.NotFound:
            if _image_exists(ctx, name):
                raise
    raise errdefs.NotFound(f"image {ref!r}: not found")


def _names(ref: str):
    """``ref`` as given, then its normalized form (``busybox`` → ``docker.io/library/busybox:latest``)."""
    yield ref
    from oci import reference

    try:
        name = str(reference.parse(ref))
    except errdefs.InvalidArgument:
        return
    if name != ref:
        yield name


def _image_exists(ctx, name: str) -> bool:
    try:
        ctx.call("Images.Get", {"name": name})
    except errdefs.NotFound:
        return False
    return True


def _temporary_lease(ctx) -> str:
    import datetime
    import secrets

    expire = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=24)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    lease = f"run-{secrets.token_hex(6)}"
    try:
        ctx.call("Leases.Create", {"id": lease, "labels": {"containerd.io/gc.expire": expire}})
    except errdefs.NotImplemented_:
        return ""
    return lease


def _quietly(ctx, method: str, params: dict) -> None:
    try:
        ctx.call(method, params)
    except errdefs.DockyardError:
        pass


def remove_container(ctx, cid: str) -> None:
    """Delete the container record and its snapshot (as ``ctr c rm``)."""
    record = ctx.call("Containers.Get", {"id": cid})
    ctx.call("Containers.Delete", {"id": cid})
    if record.get("snapshot_key") and record.get("snapshotter"):
        try:
            ctx.call("Snapshots.Remove", {"snapshotter": record["snapshotter"], "key": record["snapshot_key"]})
        except errdefs.NotFound:
            pass


def run_run(ctx, args) -> int:
    from cli.commands import tasks as taskcli

    ref, cid, cmd = split_ref_id(args)
    if args.rm and args.detach:
        raise errdefs.InvalidArgument("flags --detach and --rm cannot be specified together")
    container = create_container(ctx, args, ref, cid, cmd)
    try:
        code = taskcli.run_task(ctx, container, tty=args.tty, detach=args.detach, null_io=args.null_io)
    except BaseException:
        if args.rm:
            _cleanup_after_failure(ctx, cid)
        raise
    if args.rm:
        remove_container(ctx, cid)
    return code


def _cleanup_after_failure(ctx, cid: str) -> None:
    try:
        remove_container(ctx, cid)
    except errdefs.DockyardError as exc:
        print(f"dockyard: cleaning up {cid}: {exc.message}", file=sys.stderr)
