"""The transfer plugin ``io.dockyard.transfer.v1.local``: archive import/export (pull/push later)."""

from __future__ import annotations

import attrs

from actors.images.unpack import CLEANUP as UNPACK_CLEANUP
from actors.images.unpack import UNPACK_LAYER
from actors.plugin import DIFFER, GC, LEASE, METADATA, TRANSFER, InitContext, plugin

from .lease import LEASE_CLEANUP
from .service import TransferService


@attrs.frozen(kw_only=True)
class TransferConfig:
    differ: str = "walking"  # the Differ unpack applies layers with


@plugin(TRANSFER, "local", requires=(METADATA, DIFFER, LEASE, GC), config=TransferConfig)
async def init_transfer(ic: InitContext) -> TransferService:
    metadata = ic.plugins.get_single(METADATA)
    differs = ic.plugins.get_by_type(DIFFER)
    differ = differs.get(ic.config.differ) or next(iter(differs.values()), None)
    leases = next(iter(ic.plugins.get_by_type(LEASE).values()), None)
    return TransferService(metadata, differ, leases, lease_cleanup=ic.timeouts(LEASE_CLEANUP),
                           unpack_layer=ic.timeouts(UNPACK_LAYER), unpack_cleanup=ic.timeouts(UNPACK_CLEANUP))
