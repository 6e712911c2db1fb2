"""Pure parts of pull/push: ingest refs, platform choice, progress coalescing, the in-flight table."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from actors.transfer.access import RegistryAccess, split_user
from actors.transfer.inflight import InFlight
from actors.transfer.progress import DOWNLOADING, EXTRACTED, Progress, open_progress
from actors.transfer.pull import PullOptions, fetch_matcher, ingest_ref
from oci import mediatypes as mt
from oci.descriptor import Descriptor, Platform

DIGEST = "sha256:" + "a" * 64


def desc(media_type: str) -> Descriptor:
    return Descriptor(media_type=media_type, digest=DIGEST, size=1)


@pytest.mark.parametrize(("media_type", "kind"), [
    (mt.OCI_INDEX, "index"), (mt.DOCKER_MANIFEST_LIST, "index"), (mt.OCI_MANIFEST, "manifest"),
    (mt.DOCKER_MANIFEST, "manifest"), (mt.OCI_CONFIG, "config"), (mt.DOCKER_CONFIG, "config"),
    (mt.OCI_LAYER_GZIP, "layer"), (mt.DOCKER_LAYER_ZSTD, "layer"), ("application/x-other", "unknown"),
])
def test_ingest_refs_are_containerds(media_type, kind):
    assert ingest_ref(desc(media_type)) == f"{kind}-{DIGEST}"


def test_platform_choice_and_limits():
    matcher, limit = fetch_matcher(PullOptions())
    assert limit == 1 and matcher.match(Platform(os="linux", architecture="amd64"))
    assert fetch_matcher(PullOptions(all_platforms=True)) == (None, 0)
    matcher, limit = fetch_matcher(PullOptions(platforms=("linux/arm64",)))
    assert limit == 1 and matcher.match(Platform(os="linux", architecture="arm64", variant="v8"))
    assert not matcher.match(Platform(os="linux", architecture="amd64"))
    matcher, limit = fetch_matcher(PullOptions(platforms=("linux/arm64", "linux/amd64")))
    assert limit == 0 and matcher.match(Platform(os="linux", architecture="amd64"))


def test_credentials_stay_out_of_reprs():
    access = RegistryAccess(username="alice", secret="s3cret")
    assert "s3cret" not in repr(access) and "alice" not in repr(access)
    assert access.credentials("any") == ("alice", "s3cret")
    assert RegistryAccess().credentials("any") is None
    assert split_user("bob:pa:ss") == ("bob", "pa:ss") and split_user("bob") == ("bob", "")
    from actors.transfer.pull_service import PullImage

    assert "s3cret" not in repr(PullImage(ref="x", username="u", secret="s3cret"))


async def test_progress_publishes_every_phase_and_throttles_bytes(autojump_clock):
    published = []
    progress = Progress(namespace="ns", publish=lambda ns, topic, ev: published.append((ns, topic, ev)),
                        parents=["r:1"])
    progress.step(DOWNLOADING, "layer-x", 0, 100)
    for n in range(1, 50):
        progress.bytes(DOWNLOADING, "layer-x", n, 100)  # same instant: throttled away
    await trio.sleep(1)
    progress.bytes(DOWNLOADING, "layer-x", 60, 100)
    progress.step(EXTRACTED, "layer-x", 100, 100)
    assert [(ev.event, ev.progress) for _, _, ev in published] == [
        (DOWNLOADING, 0), (DOWNLOADING, 60), (EXTRACTED, 100)]
    assert all(ns == "ns" and topic == "/transfer/progress" and ev.parents == ["r:1"]
               for ns, topic, ev in published)


async def test_a_slow_reader_gets_the_latest_state_of_each_name(autojump_clock):
    sent = []
    gate = trio.Event()

    async def send(item):
        await gate.wait()
        sent.append(attrs.astuple(item))

    async with open_progress("ns", None, send) as progress:
        progress.step(DOWNLOADING, "a", 0, 10)
        await trio.testing.wait_all_tasks_blocked()  # the pump holds "a" at 0
        for n in range(1, 11):
            progress.bytes(DOWNLOADING, "a", n, 10)
        progress.step(DOWNLOADING, "b", 5, 10)
        progress.step(EXTRACTED, "a", 10, 10)  # a phase change is never coalesced away
        progress.bytes(DOWNLOADING, "b", 7, 10)
        progress.bytes(DOWNLOADING, "b", 8, 10)
        gate.set()
    assert [(s[0], s[1], s[3]) for s in sent] == [(DOWNLOADING, "a", 0), (DOWNLOADING, "a", 10),
                                                  (DOWNLOADING, "b", 5), (EXTRACTED, "a", 10),
                                                  (DOWNLOADING, "b", 8)]


async def test_in_flight_table_has_one_leader_per_digest():
    table = InFlight()
    with table.lead(DIGEST, 10) as download:
        assert table.current(DIGEST) is download
        with pytest.raises(RuntimeError):
            with table.lead(DIGEST, 10):
                pass
        download.received = 5
        assert table.statistics()["in_flight"] == 1
    assert table.current(DIGEST) is None and download.finished.is_set()
