"""``dockyardd``: the daemon.  One trio.run, a root supervisor, the plugin graph."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import socket
import sys

import attrs
import trio

from actors import config as config_mod
from actors.core import ChildSpec, Escalation, Supervisor
from actors.core.actor import collapse
from actors.plugin import RequiredPluginFailed, close_plugins, load_plugins, registrations
from actors.timeouts import SHUTDOWN, Timeouts
from wire import errdefs

log = logging.getLogger("dockyard.daemon")


class StartupError(Exception):
    """The daemon cannot start; the message says why, for the operator."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dockyardd", description="The dockyard daemon.")
    p.add_argument("--config", "-c", help=f"config file (default {config_mod.DEFAULT_CONFIG_PATH})")
    p.add_argument("--root", help="persistent state directory (default /var/lib/dockyard)")
    p.add_argument("--state", help="runtime state directory (default /run/dockyard)")
    p.add_argument("--address", "-a", help="msgpack-RPC socket (default <state>/dockyard.sock)")
    p.add_argument("--log-level", "-l", help="debug, info, warning, error")
    sub = p.add_subparsers(dest="command")
    cfg = sub.add_parser("config", help="config helpers")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True)
    cfg_sub.add_parser("default", help="print the full default config")
    cfg_sub.add_parser("dump", help="print the effective config")
    return p.parse_args(argv)


def effective_config(args: argparse.Namespace) -> config_mod.Config:
    cfg = config_mod.load(args.config)
    if args.root:
        cfg = attrs.evolve(cfg, root=os.path.abspath(args.root))
    if args.state:
        cfg = attrs.evolve(cfg, state=os.path.abspath(args.state))
    if args.address:
        cfg = attrs.evolve(cfg, rpc=attrs.evolve(cfg.rpc, address=os.path.abspath(args.address)))
    if args.log_level:
        cfg = attrs.evolve(cfg, debug=attrs.evolve(cfg.debug, level=args.log_level))
    if os.path.abspath(cfg.root) == os.path.abspath(cfg.state):
        raise errdefs.InvalidArgument("root and state must be different directories")
    return cfg


def take_root_lock(root: str) -> int:
    """Hold ``<root>/dockyardd.lock`` for the life of the process: one daemon per root."""
    path = os.path.join(root, "dockyardd.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StartupError(f"another dockyardd (pid {owner}) is running on root {root}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def check_socket(path: str) -> None:
    """Refuse a socket a live daemon answers on; remove a stale one."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError, socket.timeout):
        os.unlink(path)  # stale: nobody listens
        return
    finally:
        probe.close()
    raise StartupError(f"socket {path} is in use by another daemon")


async def serve(cfg: config_mod.Config) -> None:
    timeouts = Timeouts(cfg.timeouts)
    plugins_sup = Supervisor("plugins", intensity=5, period=10.0)
    root = Supervisor("dockyardd", intensity=0, period=1.0,
                      children=[ChildSpec(name="plugins", start=lambda: plugins_sup, supervisor=True)])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        try:
            plugins = await load_plugins(config=cfg, timeouts=timeouts, supervisor=plugins_sup)
        except RequiredPluginFailed as exc:
            raise StartupError(str(exc)) from None
        log.info("dockyardd ready: root %s, state %s, socket %s (pid %d)",
                 cfg.root, cfg.state, cfg.rpc_address, os.getpid())
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s: shutting down", signal.Signals(signum).name)
                break
        with trio.move_on_after(timeouts(SHUTDOWN)) as scope:
            await close_plugins(plugins, timeouts)
        if scope.cancelled_caught:
            log.error("shutdown took longer than %gs; stopping anyway", timeouts(SHUTDOWN))
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import actors.builtin  # noqa: F401  registers the plugins

    try:
        if args.command == "config":
            if args.config_command == "default":
                sys.stdout.write(config_mod.default_toml(registrations()))
            else:
                import tomli_w

                from wire.converter import unstructure

                sys.stdout.write(tomli_w.dumps(unstructure(effective_config(args))))
            return 0
        cfg = effective_config(args)
        unknown = config_mod.check_plugin_tables(cfg, registrations())
    except errdefs.DockyardError as exc:
        print(f"dockyardd: {exc.message}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, cfg.debug.level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for uri in unknown:
        log.warning("config has a table for plugin %s, which is not registered", uri)
    try:
        os.makedirs(cfg.root, mode=0o700, exist_ok=True)
        os.makedirs(cfg.state, mode=0o711, exist_ok=True)
        lock_fd = take_root_lock(cfg.root)
        check_socket(cfg.rpc_address)
        try:
            trio.run(serve, cfg)
        finally:
            for path in (cfg.rpc_address, os.path.join(cfg.state, "websocket.addr")):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            os.close(lock_fd)
    except StartupError as exc:
        print(f"dockyardd: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - report the real cause once, then exit non-zero
        real = collapse(exc)
        if isinstance(real, StartupError):
            print(f"dockyardd: {real}", file=sys.stderr)
            return 1
        if isinstance(real, KeyboardInterrupt):
            return 130
        if isinstance(real, Escalation):
            print(f"dockyardd: giving up: {real}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
