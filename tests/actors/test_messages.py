"""Every message type the daemon accepts or emits round-trips through msgpack via cattrs."""

import inspect

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actors.builtin  # noqa: F401  load every service module
import wire.events
from actors.rpc.service import Service
from wire.converter import dumps, loads


def _services(cls=Service):
    for sub in cls.__subclasses__():
        yield sub
        yield from _services(sub)


def message_types() -> list[type]:
    found = {}
    for service in _services():
        for _, fn in inspect.getmembers(service, inspect.isfunction):
            marked = getattr(fn, "__rpc__", None)
            if marked:
                found[marked[0].__qualname__ + marked[0].__module__] = marked[0]
    for _, cls in inspect.getmembers(wire.events, inspect.isclass):
        if attrs.has(cls) and cls.__module__ == "wire.events":
            found[cls.__qualname__ + cls.__module__] = cls
    return sorted(found.values(), key=lambda c: (c.__module__, c.__qualname__))


TYPES = message_types()
text = st.text(max_size=12)
payloads = st.dictionaries(text, st.one_of(text, st.integers(-2**63, 2**63 - 1), st.booleans()), max_size=3)


def build(cls):
    """st.builds, with free-form ``dict`` payload fields drawn as small maps."""
    attrs.resolve_types(cls)
    fields = attrs.fields_dict(cls)
    hints = {name: f.type for name, f in fields.items()}
    int64 = st.integers(-2**63, 2**63 - 1)
    overrides = {}
    for name, t in hints.items():
        if t in (dict, "dict"):
            overrides[name] = payloads
        elif t is int:
            overrides[name] = int64
        elif t == (int | None):
            overrides[name] = st.none() | int64
    return st.builds(cls, **overrides)


def test_the_registry_sees_the_services():
    names = {t.__name__ for t in TYPES}
    assert {"CreateNamespace", "SubscribeRequest", "Envelope", "NamespaceCreate"} <= names


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls, data):
    msg = data.draw(build(cls))
    assert loads(dumps(msg), cls) == msg
