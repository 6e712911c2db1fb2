"""Events: the exchange actor, its filters and its RPC service."""
