"""The plugin graph: init order, failures and their dependents, required and disabled plugins."""

import attrs
import pytest
import trio

from actors.config import Config, parse
from actors.core import Supervisor
from actors.core.actor import collapse
from actors.plugin import Registration, RequiredPluginFailed, SkipPlugin, load_plugins, order
from actors.timeouts import Timeouts
from wire import errdefs


def reg(type_, id_, requires=(), init=None, config=None):
    async def default_init(ic):
        return f"{type_}.{id_}"

    return Registration(type=type_, id=id_, requires=tuple(requires), init=init or default_init, config=config)


def uris(regs):
    return [r.uri for r in regs]


def test_order_places_requirements_first_in_registration_order():
    regs = [reg("t.svc", "a", ["t.meta"]), reg("t.meta", "db", ["t.content", "t.snap"]),
            reg("t.snap", "overlay"), reg("t.content", "local"), reg("t.snap", "native"),
            reg("t.server", "rpc", ["*"])]
    assert uris(order(regs)) == ["t.content.local", "t.snap.overlay", "t.snap.native", "t.meta.db",
                                 "t.svc.a", "t.server.rpc"]


def test_order_drops_disabled_and_detects_cycles():
    regs = [reg("t.a", "1", ["t.b"]), reg("t.b", "1")]
    assert uris(order(regs, {"t.b.1"})) == ["t.a.1"]
    with pytest.raises(errdefs.FailedPrecondition, match="cycle"):
        order([reg("t.a", "1", ["t.b"]), reg("t.b", "1", ["t.a"])])


async def _load(regs, **cfg):
    sup = Supervisor("plugins")
    try:
        async with trio.open_nursery() as n:
            await n.start(sup.run)
            try:
                return await load_plugins(config=Config(**cfg), timeouts=Timeouts(), supervisor=sup,
                                          registrations=regs)
            finally:
                n.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise collapse(group) from None


async def test_failed_plugin_is_recorded_and_dependents_skipped():
    async def boom(ic):
        raise RuntimeError("disk on fire")

    async def skip(ic):
        raise SkipPlugin("not on this kernel")

    seen = {}

    async def needs_both(ic):
        seen["snap"] = ic.plugins.get_by_type("t.snap")
        return "ok"

    regs = [reg("t.content", "local", init=boom), reg("t.meta", "db", ["t.content"]),
            reg("t.snap", "zfs", init=skip), reg("t.snap", "overlay"), reg("t.svc", "x", ["t.snap"], init=needs_both)]
    plugins = {p.uri: p for p in await _load(regs)}
    assert plugins["t.content.local"].status == "error" and "disk on fire" in str(plugins["t.content.local"].error)
    assert plugins["t.meta.db"].skipped and "t.content.local" in str(plugins["t.meta.db"].error)
    assert plugins["t.snap.zfs"].status == "skip"
    assert plugins["t.svc.x"].status == "ok"
    assert seen["snap"] == {"overlay": "t.snap.overlay"}  # skipped ones are left out of lookups


async def test_required_plugin_failure_stops_loading():
    async def boom(ic):
        raise errdefs.Unavailable("no backend")

    regs = [reg("t.content", "local", init=boom), reg("t.svc", "x")]
    with pytest.raises(RequiredPluginFailed, match="t.content.local did not start: no backend"):
        await _load(regs, required_plugins=["t.content.local"])
    with pytest.raises(RequiredPluginFailed, match="not registered"):
        await _load(regs, required_plugins=["t.nope.x"])
    with pytest.raises(RequiredPluginFailed, match="is disabled"):
        await _load(regs, required_plugins=["t.svc.x"], disabled_plugins=["t.svc.x"])


@attrs.frozen(kw_only=True)
class SampleConfig:
    size: int = 3
    name: str = "x"


async def test_plugin_gets_typed_config_and_its_directories(tmp_path):
    got = {}

    async def init(ic):
        got.update(root=ic.root, state=ic.state, config=ic.config)
        return "ok"

    regs = [reg("t.svc", "cfg", init=init, config=SampleConfig)]
    await _load(regs, root=str(tmp_path / "r"), state=str(tmp_path / "s"),
                plugins={"t.svc.cfg": {"size": 7}})
    assert got["config"] == SampleConfig(size=7, name="x")
    assert got["root"] == str(tmp_path / "r" / "t.svc.cfg")
    assert got["state"] == str(tmp_path / "s" / "t.svc.cfg")
    plugins = {p.uri: p for p in await _load(regs, plugins={"t.svc.cfg": {"sise": 7}})}
    assert plugins["t.svc.cfg"].status == "error" and "sise" in str(plugins["t.svc.cfg"].error)


def test_config_parsing_and_validation():
    cfg = parse({"root": "/a", "state": "/b", "timeouts": {"io.dockyard.timeout.rpc.request": "250ms"},
                 "rpc": {"max_frame_size": 1024}})
    assert Timeouts(cfg.timeouts)("io.dockyard.timeout.rpc.request") == 0.25
    assert cfg.rpc_address == "/b/dockyard.sock" and cfg.token_file == "/b/events.token"
    with pytest.raises(errdefs.InvalidArgument, match="must be different"):
        parse({"root": "/a", "state": "/a"})
    with pytest.raises(errdefs.InvalidArgument, match="not a duration"):
        parse({"timeouts": {"io.dockyard.timeout.rpc.request": "soon"}})
    with pytest.raises(errdefs.InvalidArgument, match="extra fields"):
        parse({"rpc": {"adress": "/x"}})
    with pytest.raises(errdefs.InvalidArgument, match="version"):
        parse({"version": 9})
