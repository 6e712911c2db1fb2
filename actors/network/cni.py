"""CNI: run a network configuration list's plugins against a network namespace.

The conflist is the first ``*.conflist`` (or ``*.conf``, wrapped as a list of
one) in the conf dir by name, or the one whose ``name`` is asked for.  ADD runs
the plugins in order, each given the previous result; DEL runs them in reverse
with the cached ADD result, and tolerates a netns that is already gone (as the
CNI spec asks).  Plugins are found in the bin dirs.  Sync: call in a thread.
"""

from __future__ import annotations

import json
import os
import subprocess

from wire import errdefs

DEFAULT_IFNAME = "eth0"
PLUGIN_TIMEOUT = 30.0


def load_conflist(conf_dir: str, name: str = "") -> dict:
    try:
        files = sorted(f for f in os.listdir(conf_dir) if f.endswith((".conflist", ".conf", ".json")))
    except FileNotFoundError:
        files = []
    for fname in files:
        path = os.path.join(conf_dir, fname)
        try:
            with open(path) as fh:
                conf = json.load(fh)
        except (OSError, ValueError) as exc:
            raise errdefs.InvalidArgument(f"CNI config {path}: {exc}") from None
        if "plugins" not in conf:
            conf = {"cniVersion": conf.get("cniVersion", "0.4.0"), "name": conf.get("name", ""), "plugins": [conf]}
        if not name or conf.get("name") == name:
            return conf
    raise errdefs.NotFound(f"CNI network {name or '(default)'}: no config in {conf_dir}")


def _find_plugin(kind: str, bin_dirs: list[str]) -> str:
    for d in bin_dirs:
        candidate = os.path.join(d, kind)
        if os.access(candidate, os.X_OK):
            return candidate
    raise errdefs.NotFound(f"CNI plugin {kind!r}: not found in {':'.join(bin_dirs)}")


def _exec(command: str, plugin_conf: dict, conflist: dict, prev: dict | None, *, container_id: str,
          netns: str, ifname: str, bin_dirs: list[str]) -> dict:
    conf = dict(plugin_conf)
    conf["cniVersion"] = conflist.get("cniVersion", "0.4.0")
    conf["name"] = conflist.get("name", "")
    if prev is not None:
        conf["prevResult"] = prev
    binary = _find_plugin(conf["type"], bin_dirs)
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": netns,
           "CNI_IFNAME": ifname, "CNI_PATH": ":".join(bin_dirs), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        proc = subprocess.run([binary], input=json.dumps(conf).encode(), capture_output=True, env=env,
                              timeout=PLUGIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise errdefs.DeadlineExceeded(f"CNI {command} {conf['type']}: no answer in {PLUGIN_TIMEOUT:g}s") from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        try:
            err = json.loads(out)
            message = f"{err.get('msg', '')} {err.get('details', '')}".strip()
        except ValueError:
            message = out or proc.stderr.decode(errors="replace").strip()
        raise errdefs.Internal(f"CNI {command} {conf['type']} for {container_id!r}: {message}")
    if not out:
        return prev or {}
    try:
        return json.loads(out)
    except ValueError:
        raise errdefs.Internal(f"CNI {command} {conf['type']}: output is not JSON: {out[:200]!r}") from None


def add(conflist: dict, *, container_id: str, netns: str, bin_dirs: list[str],
        ifname: str = DEFAULT_IFNAME) -> dict:
    """Attach ``netns``; the final result (interfaces, ips, routes).  Undone on failure."""
    result: dict | None = None
    done: list[dict] = []
    try:
        for plugin in conflist["plugins"]:
            result = _exec("ADD", plugin, conflist, result, container_id=container_id, netns=netns,
                           ifname=ifname, bin_dirs=bin_dirs)
            done.append(plugin)
    except BaseException:
        for plugin in reversed(done):
            try:
                _exec("DEL", plugin, conflist, result, container_id=container_id, netns=netns,
                      ifname=ifname, bin_dirs=bin_dirs)
            except errdefs.DockyardError:
                pass
        raise
    return result or {}


def delete(conflist: dict, result: dict | None, *, container_id: str, netns: str, bin_dirs: list[str],
           ifname: str = DEFAULT_IFNAME) -> None:
    """Detach (releases the address); every plugin is tried, the first error is raised."""
    first: errdefs.DockyardError | None = None
    for plugin in reversed(conflist["plugins"]):
        try:
            _exec("DEL", plugin, conflist, result, container_id=container_id, netns=netns,
                  ifname=ifname, bin_dirs=bin_dirs)
        except errdefs.DockyardError as exc:
            first = first or exc
    if first is not None:
        raise first


def addresses(result: dict) -> list[str]:
    """The IP addresses (without prefix length) a CNI result assigned."""
    return [ip["address"].split("/")[0] for ip in result.get("ips", []) if ip.get("address")]


def default_conflist(*, name: str = "dockyard", bridge: str = "dockyard0", subnet: str = "10.77.0.0/16",
                     data_dir: str = "") -> dict:
    """The network dockyard ships: a bridge with host-local addresses the host can reach."""
    ipam: dict = {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}
    if data_dir:
        ipam["dataDir"] = data_dir
    return {"cniVersion": "0.4.0", "name": name, "plugins": [
        {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
         "ipam": ipam},
    ]}
