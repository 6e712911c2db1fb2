"""Event payloads, one attrs class per topic, and the envelope that carries them.

Field names follow containerd's event messages so consumers written for
containerd's topics read dockyard's the same way.  Services publish these
classes; the exchange stores them unstructured (plain maps).
"""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class Envelope:
    seq: int
    timestamp: int  # unix nanoseconds
    namespace: str
    topic: str
    event: dict


@attrs.frozen(kw_only=True)
class NamespaceCreate:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class NamespaceUpdate:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class NamespaceDelete:
    name: str


TOPIC_NAMESPACE_CREATE = "/namespaces/create"
TOPIC_NAMESPACE_UPDATE = "/namespaces/update"
TOPIC_NAMESPACE_DELETE = "/namespaces/delete"


@attrs.frozen(kw_only=True)
class ImageCreate:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class ImageUpdate:
    name: str
    labels: dict[str, str] = attrs.Factory(dict)


@attrs.frozen(kw_only=True)
class ImageDelete:
    name: str


@attrs.frozen(kw_only=True)
class TransferProgress:
    """One step of an import/export: ``event`` is containerd's progress word."""

    event: str
    name: str = ""
    parents: list[str] = attrs.Factory(list)  # what this step belongs to (the image ref of a pull)
    progress: int = 0
    total: int = 0


TOPIC_IMAGE_CREATE = "/images/create"
TOPIC_IMAGE_UPDATE = "/images/update"
TOPIC_IMAGE_DELETE = "/images/delete"
TOPIC_TRANSFER_PROGRESS = "/transfer/progress"


# -- containers (§11) ----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ContainerRuntime:
    name: str
    options: dict | None = None


@attrs.frozen(kw_only=True)
class ContainerCreate:
    id: str
    image: str = ""
    runtime: ContainerRuntime


@attrs.frozen(kw_only=True)
class ContainerUpdate:
    id: str
    image: str = ""
    labels: dict[str, str] = attrs.Factory(dict)
    snapshot_key: str = ""


@attrs.frozen(kw_only=True)
class ContainerDelete:
    id: str


TOPIC_CONTAINER_CREATE = "/containers/create"
TOPIC_CONTAINER_UPDATE = "/containers/update"
TOPIC_CONTAINER_DELETE = "/containers/delete"


# -- tasks (§11); shims publish most of these, the daemon synthesizes exit/delete for dead shims


@attrs.frozen(kw_only=True)
class TaskExit:
    container_id: str
    id: str
    pid: int
    exit_status: int
    exited_at: int


@attrs.frozen(kw_only=True)
class TaskDelete:
    container_id: str
    id: str = ""
    pid: int
    exit_status: int
    exited_at: int


TOPIC_TASK_CREATE = "/tasks/create"
TOPIC_TASK_START = "/tasks/start"
TOPIC_TASK_EXIT = "/tasks/exit"
TOPIC_TASK_DELETE = "/tasks/delete"
TOPIC_TASK_OOM = "/tasks/oom"
TOPIC_TASK_PAUSED = "/tasks/paused"
TOPIC_TASK_RESUMED = "/tasks/resumed"
TOPIC_TASK_EXEC_ADDED = "/tasks/exec-added"
TOPIC_TASK_EXEC_STARTED = "/tasks/exec-started"


# -- content (§11) -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ContentCreate:
    digest: str
    size: int
    media_type: str = ""


@attrs.frozen(kw_only=True)
class ContentDelete:
    digest: str


TOPIC_CONTENT_CREATE = "/content/create"
TOPIC_CONTENT_DELETE = "/content/delete"


# -- snapshots (§11) -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SnapshotPrepare:
    key: str
    parent: str = ""
    snapshotter: str = ""


@attrs.frozen(kw_only=True)
class SnapshotCommit:
    key: str
    name: str
    snapshotter: str = ""


@attrs.frozen(kw_only=True)
class SnapshotRemove:
    key: str
    snapshotter: str = ""


TOPIC_SNAPSHOT_PREPARE = "/snapshot/prepare"
TOPIC_SNAPSHOT_COMMIT = "/snapshot/commit"
TOPIC_SNAPSHOT_REMOVE = "/snapshot/remove"
