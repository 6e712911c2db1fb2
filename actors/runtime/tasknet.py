"""A task's network: its own pinned netns (unless host networking or a given path), and CNI on request.

The plan is read from the spec: a ``network`` namespace without a path gets a
netns at ``<netns dir>/<namespace>-<id>``; the annotation ``io.dockyard.network.cni``
attaches it to a CNI network (``default``: the first conflist).  The plan is
written to the bundle (``network.json``) before anything is made, so a crash
in between still knows what to undo; the CNI result is added after ADD.
"""

from __future__ import annotations

import logging
import os

import trio

from oci.spec import CNI_ANNOTATION
from wire import errdefs

from . import bundle as bundles
from .bundle import Bundle

log = logging.getLogger("dockyard.runtime.network")


class TaskNetwork:
    def __init__(self, settings) -> None:
        self.settings = settings

    def plan(self, namespace: str, cid: str, spec: dict) -> dict | None:
        """What networking the task needs: a netns of its own unless host networking (or a given path)."""
        linux = spec.get("linux") or {}
        namespaces = [dict(ns) for ns in linux.get("namespaces") or []]
        net = next((ns for ns in namespaces if ns.get("type") == "network"), None)
        if net is None or net.get("path"):
            return None
        path = os.path.join(self.settings.netns_dir or os.path.join(self.settings.daemon_state, "netns"),
                            f"{namespace}-{cid}")
        cni = (spec.get("annotations") or {}).get(CNI_ANNOTATION, "")
        return {"netns": path, "cni": bool(cni), "network": "" if cni in ("", "default") else cni}

    async def up(self, bundle: Bundle, spec: dict, network: dict) -> None:
        from actors.network import cni, netns

        # write the plan first, so a crash in between still knows what to undo
        await trio.to_thread.run_sync(bundle.write_json, bundles.NETWORK, network)
        await trio.to_thread.run_sync(netns.create, network["netns"])
        linux = dict(spec.get("linux") or {})
        linux["namespaces"] = [
            {**ns, "path": network["netns"]} if ns.get("type") == "network" else ns
            for ns in linux.get("namespaces") or []]
        spec["linux"] = linux
        if network["cni"]:
            conflist = await trio.to_thread.run_sync(
                cni.load_conflist, self.settings.cni_conf_dir, network["network"] or self.settings.cni_network)
            result = await trio.to_thread.run_sync(lambda: cni.add(
                conflist, container_id=bundle.id, netns=network["netns"], bin_dirs=list(self.settings.cni_bin_dirs)))
            network["conflist"] = conflist
            network["result"] = result
            network["addresses"] = cni.addresses(result)
            await trio.to_thread.run_sync(bundle.write_json, bundles.NETWORK, network)

    async def down(self, bundle: Bundle, network: dict) -> None:
        from actors.network import cni, netns

        if network.get("cni") and network.get("conflist"):
            try:
                await trio.to_thread.run_sync(lambda: cni.delete(
                    network["conflist"], network.get("result"), container_id=bundle.id, netns=network["netns"],
                    bin_dirs=list(self.settings.cni_bin_dirs)))
            except errdefs.DockyardError as exc:
                log.warning("task %s: CNI DEL: %s", bundle.id, exc.message)
        await trio.to_thread.run_sync(netns.remove, network["netns"])
