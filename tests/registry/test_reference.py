"""Image reference parsing and normalization (oci/reference.py)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from oci.reference import NAME_TOTAL_LENGTH_MAX, Reference, familiarize, parse
from wire.errdefs import InvalidArgument

D64 = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, domain, path, tag, digest", [
    ("busybox", "docker.io", "library/busybox", "latest", ""),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
    ("user/img", "docker.io", "user/img", "latest", ""),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", ""),
    ("index.docker.io/user/img:v", "docker.io", "user/img", "v", ""),
    ("localhost/a", "localhost", "a", "latest", ""),
    ("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", ""),
    ("127.0.0.1:5000/a", "127.0.0.1:5000", "a", "latest", ""),
    ("[::1]:5000/a", "[::1]:5000", "a", "latest", ""),
    ("host.io/a@" + D64, "host.io", "a", "", D64),
    ("name:tag@" + D64, "docker.io", "library/name", "tag", D64),
    ("ghcr.io/o/r/deep/path:x_y.z-1", "ghcr.io", "o/r/deep/path", "x_y.z-1", ""),
    ("a__b/c---d/e.f_g", "docker.io", "a__b/c---d/e.f_g", "latest", ""),
    ("Registry.Example/a", "Registry.Example", "a", "latest", ""),  # upper case is fine in a domain
])
def test_parse_normalizes(text, domain, path, tag, digest):
    ref = parse(text)
    assert ref == Reference(domain=domain, path=path, tag=tag, digest=digest)


def test_properties_and_printing():
    ref = parse("localhost:5000/a/b:tag")
    assert ref.name == ref.locator == "localhost:5000/a/b"
    assert ref.object == "tag"
    assert str(ref) == "localhost:5000/a/b:tag"
    pinned = parse(f"busybox:1@{D64}")
    assert pinned.object == D64
    assert str(pinned) == f"docker.io/library/busybox:1@{D64}"
    assert pinned.familiar == f"busybox:1@{D64}"
    assert parse("busybox").familiar == "busybox:latest"
    assert parse("docker.io/user/img").familiar == "user/img:latest"
    assert parse("docker.io/library/a/b").familiar == "library/a/b:latest"
    assert familiarize("docker.io/library/busybox") == "busybox"
    assert parse("busybox", default_tag=None).tag == ""
    assert parse("busybox").with_tag("2") == parse("busybox:2")
    assert parse("busybox").with_digest(D64).digest == D64


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("Busybox", "lowercase"),
    ("user/Img:tag", "lowercase"),
    ("localhost:5000/A", "lowercase"),
    ("a" * 64, "64-byte hexadecimal"),
    ("a:b:c", "invalid reference format"),
    ("a/", "invalid reference format"),
    ("/a", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a_/b", "invalid reference format"),
    ("a:" + "t" * 129, "invalid reference format"),
    ("a:-tag", "invalid reference format"),
    ("a@sha256:abc", "invalid reference format"),
    ("a@sha256:" + "A" * 64, "invalid sha256 digest"),
    ("a@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("a@sha256:" + "a" * 63, "invalid sha256 digest"),
    ("-host.io/a", "bad domain"),
    ("host.io:port/a", "bad domain"),
    ("a b", "invalid reference format"),
])
def test_invalid_references_name_themselves(text, message):
    with pytest.raises(InvalidArgument, match=message) as info:
        parse(text)
    assert repr(text) in str(info.value)


def test_name_length_limit():
    path = "a/" + "b" * (NAME_TOTAL_LENGTH_MAX - len("host.io/a/"))
    assert len(f"host.io/{path}") == NAME_TOTAL_LENGTH_MAX
    parse(f"host.io/{path}")
    with pytest.raises(InvalidArgument, match="255"):
        parse(f"host.io/{path}b")
    # The limit applies to the normalized name, docker.io/library/ included.
    with pytest.raises(InvalidArgument, match="255"):
        parse("x" * (NAME_TOTAL_LENGTH_MAX - len("docker.io/library/") + 1))


alnum = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
separator = st.sampled_from([".", "_", "__", "-", "--"])
component = st.builds(lambda first, rest: first + "".join(s + a for s, a in rest),
                      alnum, st.lists(st.tuples(separator, alnum), max_size=2))
path = st.lists(component, min_size=1, max_size=4).map("/".join)
domain = st.sampled_from(["docker.io", "localhost", "localhost:5000", "quay.io", "reg-1.example.com:443",
                          "10.0.0.1:5000", "[fe80::1]:5000", "Upper.Case.io"])
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())


@st.composite
def references(draw) -> Reference:
    d = draw(domain)
    p = draw(path)
    if d == "docker.io":
        first = p.split("/")[0]
        assume("/" in p and "." not in first and first != "localhost")
    t = draw(st.one_of(st.just(""), tag))
    g = draw(st.one_of(st.just(""), digest))
    if not t and not g:
        t = "latest"
    return Reference(domain=d, path=p, tag=t, digest=g)


@given(references())
@settings(max_examples=200, deadline=None)
def test_normalized_text_is_a_fixed_point(ref):
    assert parse(str(ref)) == ref
    assert str(parse(str(ref))) == str(ref)


@given(references())
@settings(max_examples=200, deadline=None)
def test_familiar_form_parses_back(ref):
    assert parse(ref.familiar) == ref


@given(st.text(max_size=80))
@settings(max_examples=250, deadline=None)
def test_any_text_parses_or_raises_invalid_argument(text):
    try:
        ref = parse(text)
    except InvalidArgument:
        return
    assert parse(str(ref)) == ref


@given(st.text(alphabet="abcXYZ0123456789./:@-_", max_size=40))
@settings(max_examples=250, deadline=None)
def test_reference_alphabet_parses_or_raises_invalid_argument(text):
    try:
        ref = parse(text)
    except InvalidArgument:
        return
    assert ref.path == ref.path.lower()
    assert parse(str(ref)) == ref
