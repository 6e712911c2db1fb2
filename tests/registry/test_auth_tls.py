"""Authentication (basic, bearer tokens) and TLS against real registries."""

from __future__ import annotations

import pytest

from actors.transfer.registry import Fetcher, HostsConfig, Pusher, RegistryClient, Resolver
from tests.registry.helpers import make_image, push_image, read_all, unique_repo
from tests.registry.registry_server import TEST_USERS as USERS
from wire import errdefs

ALICE = ("alice", USERS["alice"])


def credentials_for(host: str, user_pass=ALICE):
    def lookup(requested: str):
        return user_pass if requested == host else None
    return lookup


# -- basic auth ---------------------------------------------------------------

async def test_basic_auth_required_without_credentials(basic_registry):
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
        with pytest.raises(errdefs.Unauthenticated, match=basic_registry.host):
            await Resolver(client).resolve(f"{basic_registry.host}/{unique_repo()}:t")


async def test_basic_auth_with_credentials(basic_registry):
    ref = f"{basic_registry.host}/{unique_repo()}:t"
    image = make_image("basic")
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True),
                              credentials=credentials_for(basic_registry.host)) as client:
        await push_image(client, ref, image)
        _, desc = await Resolver(client).resolve(ref)
        assert desc == image["manifest"][0]


async def test_basic_auth_with_wrong_password(basic_registry):
    async def wrong(host: str):  # async callbacks work too
        return ("alice", "not-the-password")

    async with RegistryClient(hosts_config=HostsConfig(plain_http=True), credentials=wrong) as client:
        with pytest.raises(errdefs.Unauthenticated, match="401"):
            await Resolver(client).resolve(f"{basic_registry.host}/{unique_repo()}:t")


# -- token auth ---------------------------------------------------------------

async def test_token_auth_push_and_pull_with_credentials(token_registry):
    server, tokens = token_registry
    tokens.log.clear()
    ref = f"{server.host}/{unique_repo()}:t"
    image = make_image("token")
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True),
                              credentials=credentials_for(server.host)) as client:
        await push_image(client, ref, image)
        assert tokens.log[0]["method"] == "POST"
        assert tokens.log[0]["grant_type"] == "password"
        assert tokens.log[0]["user"] == "alice"
        assert f"repository:{ref.split('/', 1)[1].split(':')[0]}:pull,push" in tokens.log[0]["scopes"]
        _, desc = await Resolver(client).resolve(ref)
        assert desc == image["manifest"][0]
        fetches = client.statistics()["token_fetches"]
        # Same scope set again: the cached token is used, no new fetch.
        await Resolver(client).resolve(ref)
        layer_desc, layer = image["layer"]
        assert await read_all(Fetcher.for_reference(client, ref), layer_desc) == layer
        assert client.statistics()["token_fetches"] == fetches


async def test_token_auth_falls_back_to_get_when_post_is_refused(token_registry):
    server, tokens = token_registry
    ref = f"{server.host}/{unique_repo()}:t"
    tokens.accept_post = False
    tokens.log.clear()
    try:
        async with RegistryClient(hosts_config=HostsConfig(plain_http=True),
                                  credentials=credentials_for(server.host)) as client:
            await push_image(client, ref, make_image("get-fallback"))
    finally:
        tokens.accept_post = True
    assert tokens.log[0] == {"method": "POST", "refused": True}
    assert tokens.log[1]["method"] == "GET" and tokens.log[1]["user"] == "alice"


async def test_anonymous_token_pulls_public_but_not_private(token_registry):
    server, tokens = token_registry
    public, private = f"{server.host}/{unique_repo('public')}:t", f"{server.host}/{unique_repo()}:t"
    image = make_image("anonymous")
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True),
                              credentials=credentials_for(server.host)) as client:
        await push_image(client, public, image)
        await push_image(client, private, image)
    tokens.log.clear()
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as anonymous:
        _, desc = await Resolver(anonymous).resolve(public)
        assert desc == image["manifest"][0]
        assert tokens.log[0]["method"] == "GET" and tokens.log[0]["user"] is None
        with pytest.raises(errdefs.Unauthenticated, match=server.host):
            await Resolver(anonymous).resolve(private)
        with pytest.raises(errdefs.Unauthenticated):
            await Pusher.for_reference(anonymous, public).push_blob(*make_image("new")["config"])


async def test_token_auth_with_wrong_password(token_registry):
    server, _ = token_registry
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True),
                              credentials=credentials_for(server.host, ("alice", "bad"))) as client:
        with pytest.raises(errdefs.Unauthenticated, match="token"):
            await Resolver(client).resolve(f"{server.host}/{unique_repo()}:t")


# -- TLS ----------------------------------------------------------------------

def hosts_dir(tmp_path, host: str, body: str) -> str:
    (tmp_path / host).mkdir()
    (tmp_path / host / "hosts.toml").write_text(body)
    return str(tmp_path)


async def test_tls_with_configured_ca(tls_registry, tmp_path):
    server, tls = tls_registry
    config = hosts_dir(tmp_path, server.host, f'server = "https://{server.host}"\nca = "{tls.ca_cert}"\n')
    ref = f"{server.host}/{unique_repo()}:t"
    image = make_image("tls")
    async with RegistryClient(hosts_config=HostsConfig(config_dir=config)) as client:
        await push_image(client, ref, image)
        _, desc = await Resolver(client).resolve(ref)
        assert desc == image["manifest"][0]


async def test_tls_unknown_ca_is_refused_unless_skip_verify(tls_registry, tmp_path):
    server, _ = tls_registry
    ref = f"{server.host}/{unique_repo()}:t"
    async with RegistryClient() as client:
        with pytest.raises(errdefs.Unavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await Resolver(client).resolve(ref)
    config = hosts_dir(tmp_path, server.host, f'server = "https://{server.host}"\nskip_verify = true\n')
    async with RegistryClient(hosts_config=HostsConfig(config_dir=config)) as client:
        with pytest.raises(errdefs.NotFound):
            await Resolver(client).resolve(ref)


async def test_plain_http_to_a_tls_registry_fails_typed(tls_registry):
    server, _ = tls_registry
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
        with pytest.raises((errdefs.Unknown, errdefs.Unavailable)):
            await Resolver(client).resolve(f"{server.host}/{unique_repo()}:t")
