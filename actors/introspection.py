"""Introspection: version, server info, the plugin list, the actor tree."""

from __future__ import annotations

import os
import uuid

import attrs

from actors.plugin import ALL, SERVICE, InitContext, PluginSet, plugin
from actors.rpc.service import CallContext, Service, rpc
from wire import filters

VERSION = "0.1.0"
REVISION = os.environ.get("DOCKYARD_REVISION", "")


@attrs.frozen(kw_only=True)
class VersionRequest:
    pass


@attrs.frozen(kw_only=True)
class ServerRequest:
    pass


@attrs.frozen(kw_only=True)
class PluginsRequest:
    filters: list[str] = attrs.Factory(list)


@attrs.frozen(kw_only=True)
class TreeRequest:
    pass


class VersionService(Service):
    name = "Version"

    @rpc(VersionRequest)
    async def Version(self, ctx: CallContext, req: VersionRequest) -> dict:
        return {"version": VERSION, "revision": REVISION}


class IntrospectionService(Service):
    name = "Introspection"

    def __init__(self, ic: InitContext, server_uuid: str) -> None:
        self.plugins: PluginSet = ic.plugins
        self.supervisor = ic.supervisor
        self.info = {
            "uuid": server_uuid,
            "pid": os.getpid(),
            "root": ic.daemon_root,
            "state": ic.daemon_state,
            "address": ic.address,
        }

    @rpc(ServerRequest)
    async def Server(self, ctx: CallContext, req: ServerRequest) -> dict:
        return dict(self.info)

    @rpc(PluginsRequest)
    async def Plugins(self, ctx: CallContext, req: PluginsRequest) -> list[dict]:
        flt = filters.parse_any(req.filters)
        out = []
        for p in self.plugins:
            record = {
                "type": p.registration.type,
                "id": p.registration.id,
                "requires": list(p.registration.requires),
                "status": p.status,
                "error": "" if p.error is None else str(p.error),
                "exports": dict(p.exports),
                "capabilities": list(p.capabilities),
            }
            if flt.match(filters.MappingAdaptor(record)):
                out.append(record)
        return out

    @rpc(TreeRequest)
    async def Tree(self, ctx: CallContext, req: TreeRequest) -> dict:
        return self.supervisor.tree()


def _server_uuid(root: str) -> str:
    path = os.path.join(root, "uuid")
    try:
        with open(path) as fh:
            return fh.read().strip()
    except FileNotFoundError:
        value = str(uuid.uuid4())
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(value)
        os.replace(tmp, path)
        return value


@plugin(SERVICE, "version-service")
async def init_version(ic: InitContext) -> VersionService:
    return VersionService()


@plugin(SERVICE, "introspection-service", requires=(ALL,))
async def init_introspection(ic: InitContext) -> IntrospectionService:
    service = IntrospectionService(ic, _server_uuid(ic.daemon_root))
    ic.plugin.exports["uuid"] = service.info["uuid"]
    return service
