"""The registry client against a real distribution registry (plain HTTP)."""

from __future__ import annotations

import hashlib
import io
import socket

import pytest
import trio

from actors.transfer.registry import (
    Fetcher, HostsConfig, Pusher, PushResult, RegistryClient, Resolver, Timeouts, fetch_into,
)
from oci import mediatypes
from oci.descriptor import Descriptor
from oci.reference import parse
from tests.registry.helpers import blob, make_image, push_image, read_all, unique_repo
from tests.registry.registry_server import free_port, start_registry
from wire import errdefs


@pytest.fixture
async def client(plain_registry):
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as c:
        yield c


async def test_push_monolithic_then_resolve_by_tag_and_fetch(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}:v1"
    image = make_image("mono")
    results = await push_image(client, ref, image)
    assert results["config"] == results["layer"] == PushResult.UPLOADED
    assert results["manifest"] == image["manifest"][0].digest

    name, desc = await Resolver(client).resolve(ref)
    assert name == ref
    assert desc == image["manifest"][0]

    fetcher = Fetcher.for_reference(client, name)
    assert await read_all(fetcher, desc) == image["manifest"][1]
    layer_desc, layer = image["layer"]
    sink = io.BytesIO()
    assert await fetch_into(fetcher, layer_desc, sink.write) == len(layer)
    assert sink.getvalue() == layer


async def test_pushing_a_blob_twice_reports_it_exists(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    desc, data = make_image("twice")["layer"]
    pusher = Pusher.for_reference(client, ref)
    assert not await pusher.exists(desc)
    assert await pusher.push_blob(desc, data) == PushResult.UPLOADED
    assert await pusher.exists(desc)
    assert await pusher.push_blob(desc, data) == PushResult.EXISTS


class ReaderAt:
    """A content-store-like source that records which ranges were read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int]] = []

    def read_at(self, offset: int, size: int) -> bytes:
        self.reads.append((offset, size))
        return self.data[offset:offset + size]


async def test_chunked_push_uploads_every_chunk(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}:chunked"
    image = make_image("chunked", layer_size=10_000)
    layer_desc, layer = image["layer"]
    source = ReaderAt(layer)
    pusher = Pusher.for_reference(client, ref)
    assert await pusher.push_blob(layer_desc, source, chunk_size=3000) == PushResult.UPLOADED
    assert source.reads == [(0, 3000), (3000, 3000), (6000, 3000), (9000, 1000)]
    assert await pusher.push_blob(image["config"][0], ReaderAt(image["config"][1])) == PushResult.UPLOADED
    await pusher.push_manifest(*image["manifest"])
    _, desc = await Resolver(client).resolve(ref)
    fetcher = Fetcher.for_reference(client, ref)
    assert await read_all(fetcher, layer_desc) == layer
    assert desc.digest == image["manifest"][0].digest


async def test_cross_repo_mount(client, plain_registry):
    source_repo, target_repo = unique_repo("src"), unique_repo("dst")
    desc, data = make_image("mount")["layer"]
    await Pusher.for_reference(client, f"{plain_registry.host}/{source_repo}").push_blob(desc, data)
    target = Pusher.for_reference(client, f"{plain_registry.host}/{target_repo}")
    assert await target.push_blob(desc, data, mount_from=source_repo) == PushResult.MOUNTED
    assert await target.exists(desc)
    # Mounting from a repository that lacks the blob falls back to an upload.
    other = Pusher.for_reference(client, f"{plain_registry.host}/{unique_repo('dst')}")
    assert await other.push_blob(desc, data, mount_from=unique_repo("empty")) == PushResult.UPLOADED


async def test_resolve_by_digest_tries_manifests_then_blobs(client, plain_registry):
    repo = unique_repo()
    image = make_image("digest")
    await push_image(client, f"{plain_registry.host}/{repo}:t", image)
    manifest_desc = image["manifest"][0]
    name, desc = await Resolver(client).resolve(f"{plain_registry.host}/{repo}@{manifest_desc.digest}")
    assert name.endswith("@" + manifest_desc.digest)
    assert desc == manifest_desc
    layer_desc = image["layer"][0]
    _, desc = await Resolver(client).resolve(f"{plain_registry.host}/{repo}@{layer_desc.digest}")
    assert (desc.digest, desc.size) == (layer_desc.digest, layer_desc.size)


async def test_resume_fetch_from_an_offset(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    image = make_image("resume", layer_size=200_000)
    await push_image(client, ref + ":r", image)
    fetcher = Fetcher.for_reference(client, ref)
    layer_desc, layer = image["layer"]
    assert await read_all(fetcher, layer_desc, offset=123_456) == layer[123_456:]
    assert await read_all(fetcher, layer_desc, offset=len(layer)) == b""
    # Manifests are served without range support: the 200 reply is skipped into place.
    manifest_desc, manifest = image["manifest"]
    assert await read_all(fetcher, manifest_desc, offset=17) == manifest[17:]
    # A resumed, verified fetch continues the caller's hash state.
    hasher = hashlib.sha256(layer[:1000])
    sink = io.BytesIO()
    assert await fetch_into(fetcher, layer_desc, sink.write, offset=1000, hasher=hasher) == len(layer) - 1000
    assert sink.getvalue() == layer[1000:]
    with pytest.raises(errdefs.OutOfRange):
        await read_all(fetcher, layer_desc, offset=len(layer) + 1)
    with pytest.raises(errdefs.InvalidArgument):
        await fetch_into(fetcher, layer_desc, sink.write, offset=10)


async def test_corrupted_blob_is_detected(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    desc, data = make_image("corrupt", layer_size=3000)["layer"]
    await Pusher.for_reference(client, ref).push_blob(desc, data)
    hex_digest = desc.digest.split(":")[1]
    stored = (plain_registry.root / "storage/docker/registry/v2/blobs/sha256"
              / hex_digest[:2] / hex_digest / "data")
    stored.write_bytes(bytes(b ^ 0xFF for b in data))
    fetcher = Fetcher.for_reference(client, ref)
    with pytest.raises(errdefs.DataLoss, match=desc.digest):
        await fetch_into(fetcher, desc, io.BytesIO().write)


async def test_size_mismatch_is_detected(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    desc, data = make_image("size", layer_size=3000)["layer"]
    await Pusher.for_reference(client, ref).push_blob(desc, data)
    fetcher = Fetcher.for_reference(client, ref)
    short = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size - 1)
    with pytest.raises(errdefs.FailedPrecondition, match="more than"):
        await fetch_into(fetcher, short, io.BytesIO().write)
    long = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size + 1)
    with pytest.raises(errdefs.FailedPrecondition, match="3000 of 3001"):
        await fetch_into(fetcher, long, io.BytesIO().write)


async def test_descriptor_urls_are_tried_first(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    desc, data = make_image("urls", layer_size=1000)["layer"]
    await Pusher.for_reference(client, ref).push_blob(desc, data)
    # A descriptor whose URL serves other bytes: the verifying helper notices.
    other_path = parse(ref).path
    lying = Descriptor(media_type=desc.media_type, digest="sha256:" + "0" * 64, size=desc.size,
                       urls=(f"{plain_registry.url}/v2/{other_path}/blobs/{desc.digest}",))
    fetcher = Fetcher.for_reference(client, f"{plain_registry.host}/{unique_repo('nothing')}")
    with pytest.raises(errdefs.DataLoss):
        await fetch_into(fetcher, lying, io.BytesIO().write)


async def test_missing_tag_and_repository_are_not_found(client, plain_registry):
    repo = unique_repo()
    await push_image(client, f"{plain_registry.host}/{repo}:present", make_image("nf"))
    missing = f"{plain_registry.host}/{repo}:absent"
    with pytest.raises(errdefs.NotFound, match=repr(missing)):
        await Resolver(client).resolve(missing)
    with pytest.raises(errdefs.NotFound):
        await Resolver(client).resolve(f"{plain_registry.host}/{unique_repo('nope')}:latest")
    fetcher = Fetcher.for_reference(client, f"{plain_registry.host}/{repo}")
    with pytest.raises(errdefs.NotFound):
        async with fetcher.fetch(blob(b"never pushed", mediatypes.OCI_LAYER)):
            pass


async def test_manifest_over_4_mib_is_refused(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    big = blob(b"\0" * (4 * 1024 * 1024 + 1), mediatypes.OCI_MANIFEST)
    await Pusher.for_reference(client, ref).push_blob(big, b"\0" * big.size, chunk_size=1024 * 1024)
    with pytest.raises(errdefs.ResourceExhausted, match="4194304"):
        await Resolver(client).resolve(f"{ref}@{big.digest}")


async def test_manifest_push_with_missing_blobs_is_rejected(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}:t"
    desc, data = make_image("missing-blobs")["manifest"]
    with pytest.raises(errdefs.FailedPrecondition, match="MANIFEST_BLOB_UNKNOWN"):
        await Pusher.for_reference(client, ref).push_manifest(desc, data)


async def test_registry_down_is_unavailable():
    port = free_port()
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
        with pytest.raises(errdefs.Unavailable, match=f"127.0.0.1:{port}"):
            await Resolver(client).resolve(f"127.0.0.1:{port}/a/b:c")


async def test_stopped_registry_is_unavailable(tmp_path):
    server = start_registry(tmp_path / "short-lived")
    try:
        async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
            ref = f"{server.host}/{unique_repo()}:t"
            await push_image(client, ref, make_image("stopped"))
            server.stop()
            with pytest.raises(errdefs.Unavailable, match=server.host):
                await Resolver(client).resolve(ref)
    finally:
        server.stop()


async def test_silent_registry_hits_the_deadline():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # accepts connections, never answers
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        timeouts = Timeouts(connect=1.0, read=0.3, request=0.3)
        async with RegistryClient(hosts_config=HostsConfig(plain_http=True), timeouts=timeouts) as client:
            with trio.fail_after(10):
                with pytest.raises(errdefs.DeadlineExceeded, match=host):
                    await Resolver(client).resolve(f"{host}/a/b:c")


async def test_mirror_from_hosts_toml_serves_another_registry(plain_registry, tmp_path):
    repo = unique_repo()
    image = make_image("mirror")
    async with RegistryClient(hosts_config=HostsConfig(plain_http=True)) as client:
        await push_image(client, f"{plain_registry.host}/{repo}:m", image)
    (tmp_path / "upstream.invalid").mkdir()
    (tmp_path / "upstream.invalid" / "hosts.toml").write_text(
        'server = "https://upstream.invalid"\ncapabilities = ["pull", "resolve"]\n'
        f'[host."http://{plain_registry.host}"]\n  capabilities = ["pull", "resolve"]\n')
    async with RegistryClient(hosts_config=HostsConfig(config_dir=str(tmp_path))) as client:
        name, desc = await Resolver(client).resolve(f"upstream.invalid/{repo}:m")
        assert desc == image["manifest"][0]
        fetcher = Fetcher.for_reference(client, name)
        assert await read_all(fetcher, image["layer"][0]) == image["layer"][1]
        with pytest.raises(errdefs.FailedPrecondition, match="push"):
            await Pusher.for_reference(client, name).push_blob(*image["config"])
        # Pushes would go only to the upstream, which does not exist.


class Redirector:
    """A 127.0.0.1 server answering every GET with a 307 to ``target`` (blob storage stand-in)."""

    def __init__(self, target: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(307)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/layer"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


async def test_redirects_to_blob_storage_are_followed(client, plain_registry):
    ref = f"{plain_registry.host}/{unique_repo()}"
    desc, data = make_image("redirect", layer_size=2000)["layer"]
    await Pusher.for_reference(client, ref).push_blob(desc, data)
    redirector = Redirector(f"{plain_registry.url}/v2/{parse(ref).path}/blobs/{desc.digest}")
    try:
        via_url = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size,
                             urls=(redirector.url,))
        fetcher = Fetcher.for_reference(client, f"{plain_registry.host}/{unique_repo('elsewhere')}")
        sink = io.BytesIO()
        await fetch_into(fetcher, via_url, sink.write, offset=500, hasher=hashlib.sha256(data[:500]))
        assert sink.getvalue() == data[500:]
        assert redirector.hits == 1
    finally:
        redirector.stop()
