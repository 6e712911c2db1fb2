"""Test images and small helpers shared by the registry tests."""

from __future__ import annotations

import hashlib
import json
import uuid

from actors.transfer.registry import Fetcher, Pusher, RegistryClient
from oci import mediatypes
from oci.descriptor import Descriptor


def blob(data: bytes, media_type: str) -> Descriptor:
    return Descriptor(media_type=media_type, digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data))


def make_image(seed: str, layer_size: int = 5000) -> dict:
    """Config, one layer and the OCI manifest tying them, all as (descriptor, bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed,
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    layer = hashlib.sha256(seed.encode()).digest() * (layer_size // 32 + 1)
    layer = layer[:layer_size]
    config_desc = blob(config, mediatypes.OCI_CONFIG)
    layer_desc = blob(layer, mediatypes.OCI_LAYER_GZIP)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
        "config": config_desc.to_json(), "layers": [layer_desc.to_json()],
    }).encode()
    return {"config": (config_desc, config), "layer": (layer_desc, layer),
            "manifest": (blob(manifest, mediatypes.OCI_MANIFEST), manifest)}


def unique_repo(prefix: str = "test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


async def push_image(client: RegistryClient, ref: str, image: dict, **blob_options) -> dict:
    pusher = Pusher.for_reference(client, ref)
    results = {}
    for part in ("config", "layer"):
        desc, data = image[part]
        results[part] = await pusher.push_blob(desc, data, **blob_options)
    desc, data = image["manifest"]
    results["manifest"] = await pusher.push_manifest(desc, data)
    return results


async def read_all(fetcher: Fetcher, desc: Descriptor, offset: int = 0) -> bytes:
    async with fetcher.fetch(desc, offset) as stream:
        return b"".join([chunk async for chunk in stream])
