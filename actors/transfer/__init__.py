"""Moving images in and out of the stores: archive import/export (and, later, pull/push).

``imports.import_archive`` and ``exports.export_archive`` do the work; the
``Transfer`` RPC service (``service.py``, plugin ``io.dockyard.transfer.v1.local``)
streams archive bytes to and from clients.  ``registry/`` is the registry client.
"""
