"""The shim's process protocol: ``<shim> ... start`` and ``<shim> ... -bundle B delete``.

``start`` runs with cwd = bundle and prints the bootstrap JSON
``{"version": 3, "address": "unix://…", "protocol": "msgpack-rpc"}``; the shim
detaches itself, so the process we run exits at once.  ``delete`` cleans up
after a dead shim and prints ``{"pid", "exit_status", "exited_at"}``.  A
non-zero exit carries a one-line reason on stderr, which becomes the error.
"""

from __future__ import annotations

import json
import os
import subprocess

import trio

from actors.rpc.client import open_client
from actors.timeouts import register
from wire import errdefs

SHIM_START = register("io.dockyard.timeout.shim.start", 10.0)
SHIM_DELETE = register("io.dockyard.timeout.shim.delete", 5.0)
SHIM_LOAD = register("io.dockyard.timeout.shim.load", 5.0)
SHIM_CALL = register("io.dockyard.timeout.shim.call", 10.0)
SHIM_SHUTDOWN = register("io.dockyard.timeout.shim.shutdown", 3.0)

MAX_VERSION = 3
RETIRE_TIMEOUT = 2.0


def _args(binary: str, namespace: str, address: str, cid: str, debug: bool) -> list[str]:
    args = [binary, "-namespace", namespace, "-address", address, "-id", cid]
    if debug:
        args.append("-debug")
    return args


async def run(args: list[str], cwd: str, timeout: float, what: str, namespace: str) -> bytes:
    """Run one shim command; its stdout, or the typed error its exit and stderr mean."""
    env = dict(os.environ, NAMESPACE=namespace)
    with trio.move_on_after(timeout) as scope:
        try:
            result = await trio.run_process(args, cwd=cwd, capture_stdout=True, capture_stderr=True,
                                            stdin=subprocess.DEVNULL, check=False, env=env)
        except FileNotFoundError:
            raise errdefs.NotFound(f"{what}: shim binary {args[0]} not found") from None
        except PermissionError:
            raise errdefs.PermissionDenied(f"{what}: shim binary {args[0]} is not executable") from None
    if scope.cancelled_caught:
        raise errdefs.DeadlineExceeded(f"{what}: shim did not finish within {timeout:g}s")
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise errdefs.Unavailable(f"{what}: {reason}")
    return result.stdout


def parse_bootstrap(out: bytes, what: str) -> dict:
    text = out.decode(errors="replace").strip()
    try:
        boot = json.loads(text)
    except ValueError:
        boot = {"version": 2, "address": text, "protocol": "msgpack-rpc"} if text else None
    if not isinstance(boot, dict) or not boot.get("address"):
        raise errdefs.Internal(f"{what}: shim printed no address ({text[:200]!r})")
    if int(boot.get("version", 2)) > MAX_VERSION:
        raise errdefs.NotImplemented_(f"{what}: shim bootstrap version {boot['version']} is newer than {MAX_VERSION}")
    if boot.get("protocol", "msgpack-rpc") != "msgpack-rpc":
        raise errdefs.NotImplemented_(f"{what}: shim protocol {boot['protocol']!r} is not msgpack-rpc")
    return {"version": int(boot.get("version", 2)), "address": boot["address"], "protocol": "msgpack-rpc"}


async def start(binary: str, bundle: str, namespace: str, cid: str, daemon_address: str, *,
                timeout: float, debug: bool = False) -> dict:
    """Run ``start``; the bootstrap dict of the (possibly shared) shim serving ``cid``."""
    what = f"start shim for task {cid!r}"
    out = await run(_args(binary, namespace, daemon_address, cid, debug) + ["start"], bundle, timeout, what, namespace)
    return parse_bootstrap(out, what)


async def delete(binary: str, bundle: str, namespace: str, cid: str, daemon_address: str, *,
                 timeout: float) -> dict:
    """Run ``delete`` after a dead shim: {pid, exit_status, exited_at}."""
    what = f"delete shim of task {cid!r}"
    out = await run(_args(binary, namespace, daemon_address, cid, False) + ["-bundle", bundle, "delete"],
                    bundle, timeout, what, namespace)
    try:
        result = json.loads(out.decode(errors="replace") or "{}")
    except ValueError:
        raise errdefs.Internal(f"{what}: shim printed {out[:200]!r}, not JSON") from None
    return {"pid": int(result.get("pid", 0)), "exit_status": int(result.get("exit_status", 255)),
            "exited_at": int(result.get("exited_at", 0))}


async def retire(address: str) -> None:
    """Tell a shim that serves nothing (started for a create that failed) to exit."""
    with trio.move_on_after(RETIRE_TIMEOUT):
        try:
            async with open_client(socket_path(address), connect_timeout=RETIRE_TIMEOUT) as client:
                await client.call("Task.Shutdown", {"id": "", "now": False}, timeout=RETIRE_TIMEOUT)
        except (errdefs.DockyardError, OSError):
            pass


def socket_path(address: str) -> str:
    if address.startswith("unix://"):
        return address[len("unix://"):]
    if "://" in address:
        raise errdefs.NotImplemented_(f"shim address {address!r}: only unix:// is supported")
    return address
