"""``GC.*`` RPC: Collect, Explain, Stats (plugin ``io.dockyard.service.v1.gc-service``)."""

from __future__ import annotations

import attrs

from actors.plugin import GC, SERVICE, InitContext, plugin
from actors.rpc.service import CallContext, Service, rpc
from wire.converter import unstructure

from .plugin import GarbageCollector


@attrs.frozen(kw_only=True)
class CollectRequest:
    dry_run: bool = False


@attrs.frozen(kw_only=True)
class ExplainRequest:
    kind: str
    id: str


@attrs.frozen(kw_only=True)
class StatsRequest:
    pass


def report_dict(report) -> dict:
    out = unstructure(report)
    out["counts"] = report.counts()
    return out


class GCService(Service):
    name = "GC"

    def __init__(self, gc: GarbageCollector) -> None:
        self.gc = gc

    @rpc(CollectRequest)
    async def Collect(self, ctx: CallContext, req: CollectRequest) -> dict:
        """Run a collection now (all namespaces) and return what it removed; dry_run only lists."""
        report = await self.gc.collect(dry_run=req.dry_run, timeout=max(ctx.remaining(), 0.001))
        return report_dict(report)

    @rpc(ExplainRequest)
    async def Explain(self, ctx: CallContext, req: ExplainRequest) -> dict:
        """Why the object in the request's namespace is kept (the chain from a root), or why not."""
        return unstructure(await self.gc.explain(ctx.namespace, req.kind, req.id))

    @rpc(StatsRequest)
    async def Stats(self, ctx: CallContext, req: StatsRequest) -> dict:
        return await self.gc.stats()


@plugin(SERVICE, "gc-service", requires=(GC,))
async def init_gc_service(ic: InitContext) -> GCService:
    return GCService(ic.plugins.get_single(GC))
