"""What every command gets: the parsed global flags and a connected client."""

from __future__ import annotations

import os

from wire.client import Client

DEFAULT_ADDRESS = "/run/dockyard/dockyard.sock"


class Context:
    def __init__(self, args) -> None:
        self.args = args
        self.address = args.address or os.environ.get("DOCKYARD_ADDRESS") or DEFAULT_ADDRESS
        self.namespace = args.namespace or os.environ.get("DOCKYARD_NAMESPACE") or "default"
        self.timeout = args.timeout
        self.format = args.format
        self.lease = getattr(args, "lease", None) or None
        self._client: Client | None = None

    @property
    def json(self) -> bool:
        return self.format == "json"

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.address, namespace=self.namespace, lease=self.lease,
                                  timeout=self.timeout).connect()
        return self._client

    def call(self, method: str, params: dict | None = None, **meta):
        return self.client.call(method, params, **meta)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
