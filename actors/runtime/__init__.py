"""The task manager (plugin ``io.dockyard.runtime.v1.task``): tasks run by shims that outlive the daemon.

- ``binary``: runtime name → shim binary
- ``bundle``: the per-task bundle directory and its files
- ``shimcmd``: the shim's ``start`` / ``delete`` process protocol
- ``shim``: a live shim connection, its proxy actor and the event pump
- ``manager``: the task table actor and the flows (create, delete, dead shims, restart recovery)
- ``service``: ``Tasks.*`` over msgpack-RPC
"""
