"""Which endpoints serve a registry host, read from containerd-style ``hosts.toml``.

Layout: ``<config_dir>/<host[:port]>/hosts.toml`` (falling back to
``<config_dir>/_default/hosts.toml``)::

    server = "https://registry.example.com"      # the upstream, tried last
    ca = "/etc/certs/example-ca.pem"             # applies to server
    [host."http://mirror.local:5000"]            # tried first, in file order
      capabilities = ["pull", "resolve"]
      skip_verify = true
      ca = ["/a.pem", "/b.pem"]
      client = [["/cert.pem", "/key.pem"]]
      override_path = false

The scheme of a URL decides plain HTTP; a host written without a scheme is
HTTPS unless the caller asked for ``plain_http`` (the CLI's ``--plain-http``).
Without configuration a host serves itself, and ``docker.io`` is served by
``registry-1.docker.io``.  Synchronous: reading config is quick, callers may
use it from a thread.
"""

from __future__ import annotations

import os
import tomllib
from urllib.parse import urlsplit

import attrs

from wire.errdefs import InvalidArgument

PULL = "pull"
RESOLVE = "resolve"
PUSH = "push"
ALL_CAPABILITIES = frozenset({PULL, RESOLVE, PUSH})

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"


@attrs.frozen(kw_only=True)
class RegistryHost:
    """One endpoint that can serve a registry's repositories."""

    scheme: str  # "https" or "http"
    host: str  # host[:port] as dialed
    path: str = "/v2"
    capabilities: frozenset[str] = ALL_CAPABILITIES
    ca: tuple[str, ...] = ()
    client_certs: tuple[tuple[str, str], ...] = ()  # (cert, key); key may be ""
    skip_verify: bool = False
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"

    @property
    def tls_identity(self) -> tuple:
        """What distinguishes one TLS client setup from another (one HTTP client each)."""
        return (self.scheme, self.ca, self.client_certs, self.skip_verify)

    def can(self, capability: str) -> bool:
        return capability in self.capabilities


@attrs.frozen(kw_only=True)
class HostsConfig:
    """Where to look for ``hosts.toml`` and the defaults for unconfigured hosts."""

    config_dir: str | None = None
    plain_http: bool = False

    def hosts(self, registry: str) -> list[RegistryHost]:
        """The endpoints for ``registry`` (a reference's domain), mirrors first, upstream last."""
        path = self._hosts_file(registry)
        if path is None:
            return [self._default_server(registry)]
        return parse_hosts_toml(_read(path), registry=registry, plain_http=self.plain_http,
                                base_dir=os.path.dirname(path), source=path)

    def _hosts_file(self, registry: str) -> str | None:
        if not self.config_dir:
            return None
        for directory in (registry, registry.replace(":", "_"), "_default"):
            candidate = os.path.join(self.config_dir, directory, "hosts.toml")
            if os.path.isfile(candidate):
                return candidate
        return None

    def _default_server(self, registry: str) -> RegistryHost:
        host = DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry
        return RegistryHost(scheme="http" if self.plain_http else "https", host=host)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(f"hosts config {path}: cannot read: {e.strerror}") from e


def parse_hosts_toml(text: str, *, registry: str, plain_http: bool = False,
                     base_dir: str = ".", source: str = "hosts.toml") -> list[RegistryHost]:
    """Parse one ``hosts.toml`` for ``registry``; InvalidArgument names the file and key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidArgument(f"hosts config {source}: {e}") from e
    default_scheme = "http" if plain_http else "https"
    hosts: list[RegistryHost] = []
    table = doc.get("host", {})
    if not isinstance(table, dict):
        raise InvalidArgument(f"hosts config {source}: [host] must be a table")
    for url, options in table.items():
        if not isinstance(options, dict):
            raise InvalidArgument(f"hosts config {source}: host {url!r} must be a table")
        hosts.append(_host(url, options, default_scheme, base_dir, f"{source}: host {url!r}"))
    server = doc.get("server")
    if server is None:
        upstream = DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry
        server = f"{default_scheme}://{upstream}"
    if not isinstance(server, str):
        raise InvalidArgument(f"hosts config {source}: server must be a string")
    hosts.append(_host(server, doc, default_scheme, base_dir, f"{source}: server"))
    return hosts


def _host(url: str, options: dict, default_scheme: str, base_dir: str, where: str) -> RegistryHost:
    if "://" not in url:
        url = f"{default_scheme}://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"hosts config {where}: url must be http(s)://host[:port][/path]")
    path = parts.path.rstrip("/")
    if not options.get("override_path", False) and not path.endswith("/v2"):
        path += "/v2"
    capabilities = options.get("capabilities", sorted(ALL_CAPABILITIES))
    if not isinstance(capabilities, list) or not set(capabilities) <= ALL_CAPABILITIES:
        raise InvalidArgument(f"hosts config {where}: capabilities must be a list of pull, resolve, push")
    headers = options.get("header", {})
    if not isinstance(headers, dict):
        raise InvalidArgument(f"hosts config {where}: header must be a table")
    return RegistryHost(
        scheme=parts.scheme,
        host=parts.netloc,
        path=path,
        capabilities=frozenset(capabilities),
        ca=tuple(_path(p, base_dir) for p in _strings(options.get("ca", []), where, "ca")),
        client_certs=_client_certs(options.get("client", []), base_dir, where),
        skip_verify=bool(options.get("skip_verify", False)),
        headers=tuple((str(k), v if isinstance(v, str) else ", ".join(map(str, v)))
                      for k, v in headers.items()),
    )


def _strings(value: object, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InvalidArgument(f"hosts config {where}: {key} must be a path or a list of paths")


def _client_certs(value: object, base_dir: str, where: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise InvalidArgument(f"hosts config {where}: client must be a path or a list")
    for item in items:
        if isinstance(item, str):
            pairs.append((_path(item, base_dir), ""))
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(p, str) for p in item):
            pairs.append((_path(item[0], base_dir), _path(item[1], base_dir)))
        else:
            raise InvalidArgument(f"hosts config {where}: client entries are a path or [cert, key]")
    return tuple(pairs)


def _path(path: str, base_dir: str) -> str:
    return path if os.path.isabs(path) else os.path.join(base_dir, path)
