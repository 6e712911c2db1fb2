"""The built-in plugins, imported in registration order (which is init order among equals).

Add a plugin by importing its module here; '*'-requiring plugins (introspection,
the RPC server) are placed after all others whatever their position.
"""

import actors.events.service  # noqa: F401  io.dockyard.event.v1.exchange
import actors.snapshots.plugin  # noqa: F401  io.dockyard.snapshotter.v1.overlayfs + .native
import actors.metadata.plugin  # noqa: F401  io.dockyard.metadata.v1.sqlite
import actors.metadata.namespaces  # noqa: F401  io.dockyard.service.v1.namespaces-service
import actors.images.plugin  # noqa: F401  io.dockyard.service.v1.images-service
import actors.snapshots.service  # noqa: F401  io.dockyard.service.v1.snapshots-service
import actors.diff.plugin  # noqa: F401  io.dockyard.differ.v1.walking
import actors.diff.service  # noqa: F401  io.dockyard.service.v1.diff-service
import actors.transfer.plugin  # noqa: F401  io.dockyard.transfer.v1.local
import actors.transfer.pull_service  # noqa: F401  io.dockyard.transfer.v1.registry (Transfer.Pull/Push, Content.Fetch)
import actors.containers.service  # noqa: F401  io.dockyard.service.v1.containers-service
import actors.content.plugin  # noqa: F401  io.dockyard.content.v1.content + service.v1.content-service
import actors.leases.service  # noqa: F401  io.dockyard.lease.v1.manager
import actors.runtime.service  # noqa: F401  io.dockyard.runtime.v1.task + io.dockyard.service.v1.tasks-service
import actors.introspection  # noqa: F401  version + introspection services
import actors.server.websocket  # noqa: F401  io.dockyard.server.v1.websocket
import actors.gc.service  # noqa: F401  io.dockyard.gc.v1.scheduler + service.v1.gc-service
import actors.server.rpc_plugin  # noqa: F401  io.dockyard.server.v1.rpc (serves everything above)
