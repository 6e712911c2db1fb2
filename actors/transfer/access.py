"""How one pull or push reaches its registry: plain HTTP or not, hosts.toml dir, credentials.

Credentials come with the caller's request and live only as long as the
transfer; they are kept out of every repr, log line and error message.
"""

from __future__ import annotations

import attrs

from .registry import HostsConfig, RegistryClient, Timeouts


@attrs.frozen(kw_only=True)
class RegistryAccess:
    plain_http: bool = False
    hosts_dir: str = ""  # containerd-style ``<dir>/<host>/hosts.toml``; "" = none
    username: str = attrs.field(default="", repr=False)
    secret: str = attrs.field(default="", repr=False)

    def credentials(self, host: str) -> tuple[str, str] | None:
        del host  # one set of credentials per request, as ``ctr --user``
        if not self.username and not self.secret:
            return None
        return self.username, self.secret

    def client(self, timeouts: Timeouts | None = None) -> RegistryClient:
        """A RegistryClient for this transfer (use as ``async with``)."""
        return RegistryClient(
            hosts_config=HostsConfig(config_dir=self.hosts_dir or None, plain_http=self.plain_http),
            credentials=self.credentials if (self.username or self.secret) else None,
            timeouts=timeouts or Timeouts())


def split_user(user: str) -> tuple[str, str]:
    """``ctr --user USER[:PASSWORD]`` → (user, password)."""
    name, _, secret = user.partition(":")
    return name, secret
