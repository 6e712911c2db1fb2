"""Containers: metadata records (id, image, runtime, spec, snapshot, labels, extensions).

A container is only a record; its running process is a task (``actors.runtime``).
"""
