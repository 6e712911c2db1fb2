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
