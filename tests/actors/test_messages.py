"""Every message type the daemon accepts or emits round-trips through msgpack via cattrs."""

import collections.abc
import inspect
import types
import typing

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
int64 = st.integers(-2**63, 2**63 - 1)
payloads = st.dictionaries(text, st.one_of(text, int64, st.booleans()), max_size=3)


def strategy(tp):
    """A strategy for a wire type: attrs classes field by field, ints within 64 bits."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any or tp is dict:
        return payloads
    if attrs.has(tp):
        attrs.resolve_types(tp)
        return st.builds(tp, **{f.alias or f.name: strategy(f.type) for f in attrs.fields(tp) if f.init})
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[st.none() if a is type(None) else strategy(a) for a in args])
    if origin is dict:
        return st.dictionaries(strategy(args[0]), strategy(args[1]), max_size=3)
    if origin in (list, collections.abc.Sequence):
        return st.lists(strategy(args[0]), max_size=3)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*map(strategy, args))
    if origin is typing.Literal:
        return st.sampled_from(args)
    if tp is int:
        return int64
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    return st.from_type(tp)


def build(cls):
    return strategy(cls)


def test_the_registry_sees_the_services():
    names = {t.__name__ for t in TYPES}
    assert {"CreateNamespace", "SubscribeRequest", "Envelope", "NamespaceCreate"} <= names


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip(cls, data):
    msg = data.draw(build(cls))
    assert loads(dumps(msg), cls) == msg
