"""Property: over random reference graphs in a real meta.db, a collection keeps exactly what a
root reaches (by the rules of reference §13, re-stated here as a small independent model) and
removes everything else."""

from __future__ import annotations

import itertools
import uuid

import trio
from hypothesis import HealthCheck, given, settings, strategies as st

from actors.gc import Collector
from tests.gc.gc_helpers import (
    FakeMetadata, add_container, add_content, add_image, add_ingest, add_lease, add_resource, add_snapshot,
    fake_digest, open_db,
)
from tests.gc.test_gc_collect import remaining

PAST, FUTURE = "2001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"
NAMESPACES = ("a", "b")
DIGESTS = [fake_digest(f"blob{i}") for i in range(5)]
SNAPS = [f"s{i}" for i in range(5)]
IMAGES = [f"img{i}" for i in range(3)]
LEASES = [f"l{i}" for i in range(3)]
INGESTS = [f"r{i}" for i in range(2)]
CONTAINERS = ["c0", "c1"]



@st.composite
def gc_labels(draw, *, backrefs: bool, root: bool) -> dict[str, str]:
    labels: dict[str, str] = {}
    for i in range(draw(st.integers(0, 2))):
        labels[f"containerd.io/gc.ref.content.{i}"] = draw(st.sampled_from(DIGESTS))
    if draw(st.booleans()):
        labels["containerd.io/gc.ref.snapshot.native"] = draw(st.sampled_from(SNAPS))
    if draw(st.integers(0, 4)) == 0:
        labels["containerd.io/gc.ref.image"] = draw(st.sampled_from(IMAGES))
    if backrefs and draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(["image", "content", "container", "snapshot.native"]))
        pool = {"image": IMAGES, "content": DIGESTS, "container": CONTAINERS, "snapshot.native": SNAPS}[kind]
        labels[f"containerd.io/gc.bref.{kind}"] = draw(st.sampled_from(pool))
    if root and draw(st.integers(0, 5)) == 0:
        labels["containerd.io/gc.root"] = "yes"
    return labels


@st.composite
def namespace_model(draw) -> dict:
    m: dict = {"content": {}, "snapshots": {}, "images": {}, "leases": {}, "ingests": {}, "containers": {}}
    for d in draw(st.lists(st.sampled_from(DIGESTS), unique=True, min_size=2)):
        m["content"][d] = draw(gc_labels(backrefs=True, root=True))
    present = draw(st.lists(st.sampled_from(SNAPS), unique=True))
    for s in sorted(present):
        lower = [p for p in present if p < s]
        parent = draw(st.sampled_from([""] + lower)) if lower else ""
        m["snapshots"][s] = (parent, draw(gc_labels(backrefs=True, root=True)))
    for i in draw(st.lists(st.sampled_from(IMAGES), unique=True)):
        labels = draw(gc_labels(backrefs=True, root=False))
        if draw(st.booleans()):
            labels["containerd.io/gc.expire"] = draw(st.sampled_from([PAST, FUTURE]))
        m["images"][i] = (draw(st.sampled_from(DIGESTS)), labels)
    for lease in draw(st.lists(st.sampled_from(LEASES), unique=True, min_size=1)):
        labels = {}
        if draw(st.booleans()):
            labels["containerd.io/gc.flat"] = ""
        if draw(st.integers(0, 2)) == 0:
            labels["containerd.io/gc.expire"] = draw(st.sampled_from([PAST, FUTURE]))
        resources = draw(st.lists(st.one_of(
            st.tuples(st.just("content"), st.sampled_from(DIGESTS)),
            st.tuples(st.just("snapshots/native"), st.sampled_from(SNAPS)),
            st.tuples(st.just("images"), st.sampled_from(IMAGES)),
            st.tuples(st.just("ingests"), st.sampled_from(INGESTS))), unique=True, min_size=1, max_size=3))
        m["leases"][lease] = (labels, resources)
    for ref in draw(st.lists(st.sampled_from(INGESTS), unique=True)):
        m["ingests"][ref] = (draw(st.sampled_from([""] + DIGESTS)), draw(st.sampled_from([0, -1, 1])))
    for cid in draw(st.lists(st.sampled_from(CONTAINERS), unique=True, max_size=1)):
        m["containers"][cid] = (draw(st.sampled_from([""] + SNAPS)), draw(gc_labels(backrefs=True, root=False)))
    return m


def expected_reachable(ns: str, m: dict) -> set[tuple[str, str, str]]:
    """The model: a fixpoint over (node, flat) states, written from the rules, not from the collector."""
    def refs_of(labels):
        for k, v in labels.items():
            if k.startswith("containerd.io/gc.ref.content"):
                yield ("content", v)
            elif k.startswith("containerd.io/gc.ref.snapshot.native"):
                yield ("snapshot", "native/" + v)
            elif k.startswith("containerd.io/gc.ref.image"):
                yield ("image", v)

    def expired(labels):
        return labels.get("containerd.io/gc.expire") == PAST

    exists = ({("content", d) for d in m["content"]} | {("snapshot", "native/" + s) for s in m["snapshots"]}
              | {("image", i) for i in m["images"]} | {("lease", l) for l in m["leases"]}
              | {("ingest", r) for r in m["ingests"]} | {("container", c) for c in m["containers"]})
    labelled = {("content", d): l for d, l in m["content"].items()}
    labelled |= {("snapshot", "native/" + s): l for s, (_, l) in m["snapshots"].items()}
    labelled |= {("container", c): l for c, (_, l) in m["containers"].items()}
    labelled |= {("image", i): l for i, (_, l) in m["images"].items() if expired(l)}
    brefs: dict = {}
    for holder, labels in labelled.items():
        for k, v in labels.items():
            if k.startswith("containerd.io/gc.bref."):
                kind = k[len("containerd.io/gc.bref."):]
                target = ("snapshot", "native/" + v) if kind == "snapshot.native" else (kind, v)
                brefs.setdefault(target, []).append(holder)

    def edges(node, flat):
        kind, key = node
        out = [] if flat else [(h, False) for h in brefs.get(node, [])]
        if node not in exists:
            return out
        if kind == "lease":
            labels, resources = m["leases"][key]
            f = "containerd.io/gc.flat" in labels
            for rtype, rid in resources:
                k = {"content": "content", "images": "image", "ingests": "ingest"}.get(rtype, "snapshot")
                out.append(((k, rid if k != "snapshot" else "native/" + rid), f))
            return out
        labels = {}
        if kind == "content":
            labels = m["content"][key]
        elif kind == "snapshot":
            parent, labels = m["snapshots"][key[len("native/"):]]
            if parent:
                out.append((("snapshot", "native/" + parent), flat))
        elif kind == "image":
            target, labels = m["images"][key]
            out.append((("content", target), flat))
        elif kind == "ingest":
            if m["ingests"][key][0]:
                out.append((("content", m["ingests"][key][0]), False))
        elif kind == "container":
            snap, labels = m["containers"][key]
            if snap:
                out.append((("snapshot", "native/" + snap), False))
        if not flat:
            out += [(n, False) for n in refs_of(labels)]
        return out

    roots = [("lease", l) for l, (labels, _) in m["leases"].items() if not expired(labels)]
    roots += [("image", i) for i, (_, labels) in m["images"].items() if not expired(labels)]
    roots += [("ingest", r) for r, (_, when) in m["ingests"].items() if when == 1]
    roots += [n for n, labels in labelled.items() if n[0] in ("content", "snapshot")
              and "containerd.io/gc.root" in labels]
    roots += [("container", c) for c in m["containers"]]
    seen = {(r, False) for r in roots}
    frontier = list(seen)
    while frontier:
        frontier = [e for state in frontier for e in edges(*state) if e not in seen]
        seen.update(frontier)
    return {(kind, ns, key) for (kind, key), _ in seen if (kind, key) in exists and kind != "container"}


def insert(db, ns: str, m: dict) -> None:
    import time

    hour = 3600 * 10**9
    for d, labels in m["content"].items():
        add_content(db, ns, d, labels)
    for s, (parent, labels) in m["snapshots"].items():
        add_snapshot(db, ns, "native", s, parent=parent, labels=labels)
    for i, (target, labels) in m["images"].items():
        add_image(db, ns, i, target, labels)
    for lease, (labels, resources) in m["leases"].items():
        add_lease(db, ns, lease, labels)
        for rtype, rid in resources:
            add_resource(db, ns, lease, rtype, rid)
    for ref, (expected, when) in m["ingests"].items():
        add_ingest(db, ns, ref, expected=expected, expire_at=time.time_ns() + when * hour if when else 0)
    for cid, (snap, labels) in m["containers"].items():
        add_container(db, ns, cid, "native" if snap else "", snap, labels)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(st.fixed_dictionaries({ns: namespace_model() for ns in NAMESPACES}))
def test_collection_keeps_exactly_what_roots_reach(tmp_path, models):
    path = tmp_path / uuid.uuid4().hex
    path.mkdir()
    db = open_db(path)
    try:
        for ns, m in models.items():
            insert(db, ns, m)
        before = remaining(db)
        keep = set(itertools.chain.from_iterable(expected_reachable(ns, m) for ns, m in models.items()))
        metadata = FakeMetadata(db=db)
        dry = trio.run(Collector(metadata).collect, True)
        report = trio.run(Collector(metadata).collect)
        removed = {(r.kind, r.namespace, r.id) for r in report.removed}
        assert remaining(db) == keep
        assert removed == before - keep
        assert {(r.kind, r.namespace, r.id) for r in dry.removed} == removed
        # a second run finds nothing more: what is left is exactly the reachable set
        assert trio.run(Collector(metadata).collect).removed == []
    finally:
        db.close()
