"""Token auth (401 without credentials, success with them), TLS with a test CA, the CLI, skopeo."""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid

import pytest

from cli.commands.pull import LiveDisplay, PlainDisplay
from tests.registry.registry_server import (
    TEST_USERS, TokenServer, make_server_cert, make_test_ca, start_registry,
)
from tests.transfer.image_builder import oci_archive
from tests.transfer.pull.conftest import require_registry
from tests.transfer.pull.helpers import busybox_image, call_streaming, import_image, pull, push
from wire import errdefs

USER, PASSWORD = next(iter(TEST_USERS.items()))


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    require_registry()
    directory = tmp_path_factory.mktemp("pull-token-registry")
    tokens = TokenServer(directory / "token", users=dict(TEST_USERS)).start()
    try:
        server = start_registry(directory / "server", token=tokens)
    except BaseException:
        tokens.stop()
        raise
    yield server
    server.stop()
    tokens.stop()


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    require_registry()
    directory = tmp_path_factory.mktemp("pull-tls-registry")
    tls = make_server_cert(directory, make_test_ca(directory))
    server = start_registry(directory / "server", tls=tls)
    yield server, tls
    server.stop()


def test_token_auth_401_without_credentials_and_success_with_them(token_registry, pusher, puller):
    image = busybox_image(b"token")
    import_image(pusher, "local/bb:tok", image)
    ref = f"{token_registry.host}/private/{uuid.uuid4().hex[:8]}:1"
    with pytest.raises(errdefs.Unauthenticated):
        push(pusher, ref, local="local/bb:tok")
    push(pusher, ref, local="local/bb:tok", username=USER, secret=PASSWORD)

    with pytest.raises(errdefs.Unauthenticated) as err:
        pull(puller, ref)
    assert PASSWORD not in err.value.message
    with pytest.raises(errdefs.Unauthenticated):
        pull(puller, ref, username=USER, secret="wrong")
    result, _ = pull(puller, ref, username=USER, secret=PASSWORD)
    assert result["target"]["digest"] == image.manifest.digest
    # the daemon never writes the secret down
    assert PASSWORD not in puller.log_path.read_text(errors="replace")

    # anonymous pulls of public repositories get an anonymous token
    public = f"{token_registry.host}/public/{uuid.uuid4().hex[:8]}:1"
    push(pusher, public, local="local/bb:tok", username=USER, secret=PASSWORD)
    result, _ = pull(puller, public, unpack=False, namespace=puller.namespace + "-anon")
    assert result["target"]["digest"] == image.manifest.digest


def test_tls_with_a_test_ca_from_hosts_toml(tls_registry, pusher, puller, tmp_path):
    server, tls = tls_registry
    hosts = tmp_path / "certs.d"
    (hosts / server.host).mkdir(parents=True)
    (hosts / server.host / "hosts.toml").write_text(f'server = "https://{server.host}"\nca = "{tls.ca_cert}"\n')
    image = busybox_image(b"tls")
    import_image(pusher, "local/bb:tls", image)
    ref = f"{server.host}/tls/{uuid.uuid4().hex[:8]}:1"
    push(pusher, ref, local="local/bb:tls", plain_http=False, hosts_dir=str(hosts))
    with pytest.raises(errdefs.Unavailable):  # the system trust store does not know the test CA
        pull(puller, ref, plain_http=False)
    result, _ = pull(puller, ref, plain_http=False, hosts_dir=str(hosts))
    assert result["target"]["digest"] == image.manifest.digest


def test_cli_push_pull_and_content_fetch(registry, pusher, puller):
    image = busybox_image(b"cli")
    import_image(pusher, "local/bb:cli", image)
    ref = f"{registry.host}/cli/{uuid.uuid4().hex[:8]}:1"
    out = pusher.cli("images", "push", "--plain-http", ref, "local/bb:cli")
    assert image.manifest.digest in out.stdout.decode()
    assert f"manifest-{image.manifest.digest}: complete" in out.stderr.decode()

    out = puller.cli("images", "pull", "--plain-http", ref)
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert f"{ref}: {image.manifest.digest}" in stdout and "unpacked: sha256:" in stdout
    lines = stderr.splitlines()
    assert f"{ref}: resolving" in lines[0] and lines[-1].startswith("elapsed:")
    assert f"layer-{image.layers[0].digest}: extracted" in stderr
    assert ref in puller.cli("images", "ls", "-q").stdout.decode().split()

    out = puller.cli("--format", "json", "images", "pull", "--plain-http", "--no-unpack", ref)
    assert '"unpacked": ""' in out.stdout.decode()

    fetched = puller.cli("-n", puller.namespace + "-fetch", "content", "fetch", "--plain-http", ref)
    assert image.manifest.digest in fetched.stdout.decode()

    bad = puller.cli("images", "pull", "--plain-http", f"{registry.host}/cli/none:1", check=False)
    assert bad.returncode == 1
    assert bad.stderr.decode().splitlines()[-1].startswith("dockyard: ")


def test_live_display_draws_bars_total_and_speed():
    out = io.StringIO()
    display = LiveDisplay(out)
    display.update({"event": "resolved", "name": "r/x:1", "parents": [], "progress": 10, "total": 10})
    display.update({"event": "downloading", "name": "layer-sha256:ab", "parents": [], "progress": 512,
                    "total": 1024})
    display.finish()
    text = out.getvalue()
    assert "|" + "+" * 20 + " " * 20 + "|" in text and "512 B/1.0 KiB" in text
    assert "elapsed:" in text and "/s)" in text
    assert "\x1b[3A" in text  # redrawn in place

    plain = io.StringIO()
    display = PlainDisplay(plain)
    for progress in (0, 100, 200):
        display.update({"event": "downloading", "name": "layer-sha256:ab", "parents": [], "progress": progress,
                        "total": 200})
    display.update({"event": "complete", "name": "layer-sha256:ab", "parents": [], "progress": 200, "total": 200})
    lines = plain.getvalue().splitlines()
    assert lines == ["layer-sha256:ab: downloading 0 B/200 B", "layer-sha256:ab: complete 200 B/200 B"]


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed (apt-get install skopeo)")
def test_pull_an_image_skopeo_pushed(registry, puller, tmp_path):
    image = busybox_image(b"skopeo")
    archive = tmp_path / "image.tar"
    archive.write_bytes(oci_archive({"local/skopeo:1": image}))
    ref = f"{registry.host}/skopeo/{uuid.uuid4().hex[:8]}:1"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", f"oci-archive:{archive}:1",
                    f"docker://{ref}"], check=True, capture_output=True, timeout=60)
    result, _ = call_streaming(puller, "Transfer.Pull", {"ref": ref, "plain_http": True})
    assert result["unpacked"] and result["blobs"] == 4
