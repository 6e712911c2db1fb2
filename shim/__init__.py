"""dockyard-shim-runc-v1: the per-container (or per-group) runc shim.

Kept lean on purpose (it is paid once per container or group): the stdlib, msgpack
through ``wire.codec`` and ``wire.errdefs``, no Trio, no attrs.
"""
