"""hosts.toml endpoints, WWW-Authenticate parsing and error mapping (pure parts of the client)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.transfer.registry import HostsConfig, RegistryHost, parse_challenges, parse_hosts_toml
from actors.transfer.registry.errors import status_error, transport_error
from wire import errdefs
from wire.errdefs import InvalidArgument


def test_unconfigured_hosts_serve_themselves_over_https():
    assert HostsConfig().hosts("quay.io") == [RegistryHost(scheme="https", host="quay.io")]
    assert HostsConfig().hosts("docker.io")[0].base_url == "https://registry-1.docker.io/v2"
    assert HostsConfig(plain_http=True).hosts("localhost:5000")[0].base_url == "http://localhost:5000/v2"


def test_hosts_toml_mirrors_first_then_server(tmp_path):
    (tmp_path / "docker.io").mkdir()
    (tmp_path / "docker.io" / "hosts.toml").write_text('''
server = "https://registry-1.docker.io"
capabilities = ["pull", "resolve"]

[host."http://mirror.local:5000"]
  capabilities = ["pull"]
  header = { X-Test = "1", X-Multi = ["a", "b"] }

[host."https://mirror2.local/custom/prefix"]
  ca = "certs/ca.pem"
  client = [["client.crt", "client.key"]]
  skip_verify = true
  override_path = true
''')
    hosts = HostsConfig(config_dir=str(tmp_path)).hosts("docker.io")
    assert [h.base_url for h in hosts] == [
        "http://mirror.local:5000/v2", "https://mirror2.local/custom/prefix", "https://registry-1.docker.io/v2"]
    mirror, mirror2, server = hosts
    assert mirror.capabilities == {"pull"}
    assert dict(mirror.headers) == {"X-Test": "1", "X-Multi": "a, b"}
    assert mirror2.ca == (str(tmp_path / "docker.io" / "certs/ca.pem"),)
    assert mirror2.client_certs == ((str(tmp_path / "docker.io" / "client.crt"),
                                     str(tmp_path / "docker.io" / "client.key")),)
    assert mirror2.skip_verify and not server.skip_verify
    assert server.capabilities == {"pull", "resolve"}


def test_default_directory_and_missing_server(tmp_path):
    (tmp_path / "_default").mkdir()
    (tmp_path / "_default" / "hosts.toml").write_text('[host."https://cache.local"]\n')
    hosts = HostsConfig(config_dir=str(tmp_path), plain_http=True).hosts("example.com:8443")
    assert [h.base_url for h in hosts] == ["https://cache.local/v2", "http://example.com:8443/v2"]


def test_host_without_scheme_follows_plain_http():
    hosts = parse_hosts_toml('server = "reg.local:5000"', registry="reg.local:5000", plain_http=True)
    assert hosts[0].base_url == "http://reg.local:5000/v2"
    hosts = parse_hosts_toml('server = "reg.local:5000"', registry="reg.local:5000")
    assert hosts[0].base_url == "https://reg.local:5000/v2"


@pytest.mark.parametrize("text, message", [
    ("server = ", "hosts.toml"),
    ('server = "ftp://x"', "http"),
    ('capabilities = ["fly"]', "capabilities"),
    ('ca = 3', "ca"),
    ('[host."https://m"]\nclient = [1]', "client"),
    ("server = 1", "server"),
])
def test_bad_hosts_toml_is_invalid_argument(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_hosts_toml(text, registry="r.io")


def test_challenges_are_parsed():
    [bearer] = parse_challenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull",error="insufficient_scope"')
    assert bearer.scheme == "bearer"
    assert bearer.param("realm") == "https://auth.docker.io/token"
    assert bearer.param("scope") == "repository:library/busybox:pull"
    assert bearer.param("error") == "insufficient_scope"
    basic, bearer = parse_challenges('Basic realm="x y", Bearer realm="r", service=s')
    assert (basic.scheme, basic.param("realm")) == ("basic", "x y")
    assert bearer.params == {"realm": "r", "service": "s"}
    [quoted] = parse_challenges(r'Bearer realm="a\"b"')
    assert quoted.param("realm") == 'a"b'
    assert parse_challenges("") == []


token = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,8}", fullmatch=True)
value = st.text(alphabet=st.characters(codec="ascii", exclude_characters="\x00\r\n"), max_size=20)


@given(st.lists(st.tuples(token, st.dictionaries(token, value, max_size=4)), max_size=3))
@settings(max_examples=200, deadline=None)
def test_challenges_round_trip(challenges):
    def quote(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    header = ", ".join(f"{scheme} " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
                       for scheme, params in challenges)
    parsed = parse_challenges(header)
    assert [c.scheme for c in parsed] == [s.lower() for s, _ in challenges]
    for c, (_, params) in zip(parsed, challenges):
        assert c.params == {k.lower(): v for k, v in params.items()}


@given(st.text(max_size=60))
@settings(deadline=None)
def test_challenge_parser_never_raises(text):
    parse_challenges(text)


@pytest.mark.parametrize("status, body, kind", [
    (401, b"", errdefs.Unauthenticated),
    (403, b'{"errors":[{"code":"DENIED"}]}', errdefs.PermissionDenied),
    (404, b"", errdefs.NotFound),
    (429, b"", errdefs.Unavailable),
    (500, b"", errdefs.Unavailable),
    (503, b"", errdefs.Unavailable),
    (400, b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown"}]}', errdefs.FailedPrecondition),
    (400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', errdefs.InvalidArgument),
    (405, b'{"errors":[{"code":"UNSUPPORTED"}]}', errdefs.NotImplemented_),
    (416, b"", errdefs.OutOfRange),
    (418, b"x" * 1000, errdefs.Unknown),
])
def test_status_errors_are_typed_and_name_the_request(status, body, kind):
    error = status_error("registry r.io: GET /v2/a/manifests/t", httpx.Response(status), body)
    assert type(error) is kind
    assert str(error).startswith(f"registry r.io: GET /v2/a/manifests/t: HTTP {status}")
    assert len(str(error)) < 300  # bodies are excerpted


def test_transport_errors_keep_the_root_cause():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as e:
            raise httpx.ConnectError("") from e
    except httpx.ConnectError as e:
        error = transport_error("registry h:1: HEAD /v2/", e)
    assert isinstance(error, errdefs.Unavailable)
    assert "Connection refused" in str(error)
    assert isinstance(transport_error("x", httpx.ReadTimeout("slow")), errdefs.DeadlineExceeded)
