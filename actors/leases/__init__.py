"""Leases (reference §12): named holds on content, ingests, images and snapshots.

``store.LeaseStore`` is the actor that owns lease records in meta.db;
``service.LeasesService`` is the plugin ``io.dockyard.lease.v1.manager`` and the
``Leases.*`` RPC facade.  Stores that create things add them to the request's
lease with ``actors.metadata.leases.add_to_lease`` inside their own transaction.
"""

from .records import Lease, Resource, generate_id, parse_resource
from .service import LeasesService

__all__ = ["Lease", "LeasesService", "Resource", "generate_id", "parse_resource"]
