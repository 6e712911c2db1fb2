"""The registry client: resolve, fetch and push over the distribution protocol (§14).

    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
        name, desc = await Resolver(client).resolve("localhost:5000/app:1")
        fetcher = Fetcher.for_reference(client, name)
        async with fetcher.fetch(desc) as stream:
            async for chunk in stream: ...
"""

from .challenge import Challenge, parse_challenges
from .client import Credentials, RegistryClient, Timeouts
from .fetcher import BlobStream, Fetcher
from .hosts import PULL, PUSH, RESOLVE, HostsConfig, RegistryHost, parse_hosts_toml
from .pusher import BlobSource, Pusher, PushResult
from .resolver import MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Resolver
from .verify import fetch_into

__all__ = [
    "BlobSource", "BlobStream", "Challenge", "Credentials", "Fetcher", "HostsConfig",
    "MANIFEST_ACCEPT", "MAX_MANIFEST_SIZE", "PULL", "PUSH", "PushResult", "Pusher", "RESOLVE",
    "RegistryClient", "RegistryHost", "Resolver", "Timeouts", "fetch_into", "parse_challenges",
    "parse_hosts_toml",
]
