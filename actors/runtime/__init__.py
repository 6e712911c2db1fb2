"""The task manager (plugin ``io.dockyard.runtime.v1.task``): tasks run by shims that outlive the daemon.

- ``binary``: runtime name → shim binary
- ``bundle``: the per-task bundle directory and its files
- ``shimcmd``: the shim's ``start`` / ``delete`` process protocol
- ``shim``: a live shim connection, its proxy actor and the event pump
- ``table``: the task table actor (which tasks, which shim serves each)
- ``manager``: the flows (create, delete, dead shims, restart recovery)
- ``tasknet``: a task's netns and CNI attachment
- ``zygote``: shims forked by one fork server per shim binary (``start`` is the fallback)
- ``service``: ``Tasks.*`` over msgpack-RPC
"""
