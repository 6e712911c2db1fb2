"""Namespace rules on a real meta.db: names, labels, masks, and delete while in use."""

import pytest
import trio

from actors.core import ChildSpec, Supervisor
from actors.metadata.db import MetadataDB, now_ns
from actors.metadata.namespaces import (
    CreateNamespace, DeleteNamespace, GetNamespace, ListNamespaces, NamespaceStore, UpdateNamespace,
)
from actors.metadata.plugin import Metadata
from wire import errdefs


class Recorder:
    """Collects what the store publishes (the exchange has its own tests)."""

    def __init__(self):
        self.events = []

    def publish(self, namespace, topic, event):
        self.events.append((namespace, topic, event))


@pytest.fixture
async def store(tmp_path):
    events = Recorder()
    metadata = Metadata(db=MetadataDB(str(tmp_path / "meta.db")), events=events)
    sup = Supervisor("test", children=[ChildSpec(name="namespaces", start=lambda: NamespaceStore(metadata))])
    async with trio.open_nursery() as n:
        await n.start(sup.run)

        async def ask(msg):
            return await sup.ref("namespaces").ask(msg, timeout=5)

        ask.db = metadata.db
        ask.events = events
        yield ask
        n.cancel_scope.cancel()


async def test_create_get_list_update_delete(store):
    assert await store(CreateNamespace(name="a", labels={"x": "1"})) == {"name": "a", "labels": {"x": "1"}}
    with pytest.raises(errdefs.AlreadyExists):
        await store(CreateNamespace(name="a"))
    await store(CreateNamespace(name="b"))
    assert [n["name"] for n in await store(ListNamespaces())] == ["a", "b"]
    assert [n["name"] for n in await store(ListNamespaces(filters=["labels.x==1"]))] == ["a"]
    updated = await store(UpdateNamespace(name="a", labels={"y": "2", "x": ""}, update_mask=["labels.y", "labels.x"]))
    assert updated["labels"] == {"y": "2"}
    assert (await store(UpdateNamespace(name="a", labels={"z": "3"})))["labels"] == {"z": "3"}  # no mask: replace
    with pytest.raises(errdefs.InvalidArgument, match="only labels"):
        await store(UpdateNamespace(name="a", labels={}, update_mask=["name"]))
    await store(DeleteNamespace(name="b"))
    with pytest.raises(errdefs.NotFound):
        await store(DeleteNamespace(name="b"))
    assert [t for _, t, _ in store.events.events] == ["/namespaces/create", "/namespaces/create", "/namespaces/update",
                                               "/namespaces/update", "/namespaces/delete"]


@pytest.mark.parametrize("name", ["", "a" * 77, "-a", "a..b", "a/b", "ns\x00", "É"])
async def test_invalid_names_are_refused(store, name):
    with pytest.raises(errdefs.InvalidArgument):
        await store(CreateNamespace(name=name))


async def test_label_size_rule(store):
    with pytest.raises(errdefs.InvalidArgument):
        await store(CreateNamespace(name="a", labels={"k": "v" * 4096}))


@pytest.mark.parametrize("table,row", [
    ("images", {"name": "img", "target": "{}"}),
    ("content", {"digest": "sha256:" + "0" * 64, "size": 3}),
    ("containers", {"id": "c1", "record": "{}"}),
    ("snapshots", {"snapshotter": "overlayfs", "key": "k", "backend_key": "busy/1/k"}),
])
async def test_delete_is_refused_while_the_namespace_holds_anything(store, table, row):
    await store(CreateNamespace(name="busy"))
    row = {"namespace": "busy", **row, "created_at": 1, "updated_at": 1}
    with store.db.write() as tx:
        tx.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                   tuple(row.values()))
    with pytest.raises(errdefs.FailedPrecondition, match=f"still has {table}"):
        await store(DeleteNamespace(name="busy"))
    assert (await store(GetNamespace(name="busy")))["name"] == "busy"


async def test_leases_and_ingests_do_not_block_and_go_with_the_namespace(store):
    await store(CreateNamespace(name="light"))
    with store.db.write() as tx:
        tx.execute("INSERT INTO leases (namespace, id, created_at) VALUES ('light', 'l1', ?)", (now_ns(),))
        tx.execute("INSERT INTO ingests (namespace, ref, backend_ref) VALUES ('light', 'ref', 'light/1/ref')")
    await store(DeleteNamespace(name="light"))
    with store.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM leases WHERE namespace='light'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM ingests WHERE namespace='light'").fetchone()[0] == 0


async def test_get_of_unknown_namespace_is_empty(store):
    assert await store(GetNamespace(name="ghost")) == {"name": "ghost", "labels": {}}
