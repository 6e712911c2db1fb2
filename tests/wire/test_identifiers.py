import re

import pytest
from hypothesis import given, strategies as st

from wire.errdefs import InvalidArgument
from wire.identifiers import (
    FREE_FORM_MAX_BYTES,
    IDENTIFIER_MAX_LENGTH,
    LABEL_MAX_BYTES,
    parse_digest,
    validate_digest,
    validate_free_form,
    validate_identifier,
    validate_labels,
    validate_namespace,
    validate_topic,
)

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
SEPARATORS = "._-"
HEX64 = "0123456789abcdef" * 4


def is_identifier_oracle(value: str) -> bool:
    """The grammar restated without a regex, to check the implementation against."""
    if not 1 <= len(value) <= 76:
        return False
    if any(ch not in ALNUM + SEPARATORS for ch in value):
        return False
    if value[0] in SEPARATORS or value[-1] in SEPARATORS:
        return False
    return not any(a in SEPARATORS and b in SEPARATORS for a, b in zip(value, value[1:]))


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    "value",
    ["a", "default", "k8s.io", "my-container_1", "A.b-C_d", "0", "x" * IDENTIFIER_MAX_LENGTH],
)
def test_valid_identifiers_are_returned(value):
    assert validate_identifier(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "", "x" * (IDENTIFIER_MAX_LENGTH + 1), "-a", "a-", ".a", "a.", "a..b", "a-_b", "a b",
        "a/b", "../etc", "a\x00", "a\n", "été", "١٢٣", "a:b", "a+b",
    ],
)
def test_invalid_identifiers_are_rejected(value):
    with pytest.raises(InvalidArgument):
        validate_identifier(value)


def test_identifier_error_names_what_and_value():
    with pytest.raises(InvalidArgument, match=r"container id 'bad/id'"):
        validate_identifier("bad/id", "container id")
    with pytest.raises(InvalidArgument, match="exec id must not be empty"):
        validate_identifier("", "exec id")


def test_identifier_error_cuts_huge_values():
    with pytest.raises(InvalidArgument) as info:
        validate_identifier("x" * 100_000)
    assert len(info.value.message) < 300


def test_non_string_identifier_is_invalid_argument():
    with pytest.raises(InvalidArgument, match="must be a string"):
        validate_identifier(12)


def test_namespace_uses_identifier_rule_and_names_namespace():
    assert validate_namespace("k8s.io") == "k8s.io"
    with pytest.raises(InvalidArgument, match="namespace"):
        validate_namespace("k8s/io")


@given(st.from_regex(r"\A[A-Za-z0-9]+([._-][A-Za-z0-9]+)*\Z").filter(lambda s: len(s) <= 76))
def test_generated_identifiers_pass(value):
    assert validate_identifier(value) == value


@given(
    st.from_regex(r"\A[A-Za-z0-9]+([._-][A-Za-z0-9]+)*\Z").filter(lambda s: len(s) <= 70),
    st.integers(min_value=0),
    st.sampled_from(list("._-/ :\x00\n\té٣") + ["..", "--"]),
)
def test_mutated_identifiers_behave_as_the_grammar_says(value, where, insert):
    at = where % (len(value) + 1)
    mutated = value[:at] + insert + value[at:]
    if is_identifier_oracle(mutated):
        assert validate_identifier(mutated) == mutated
    else:
        with pytest.raises(InvalidArgument):
            validate_identifier(mutated)


@given(st.text(alphabet=ALNUM[:6] + "._-/é ", max_size=80))
def test_any_text_passes_exactly_when_the_grammar_allows(value):
    if is_identifier_oracle(value):
        assert validate_identifier(value) == value
    else:
        with pytest.raises(InvalidArgument):
            validate_identifier(value)


# ---------------------------------------------------------------- topics


@pytest.mark.parametrize("topic", ["/tasks/exit", "/a", "/snapshot/commit", "/tasks/exec-started"])
def test_valid_topics(topic):
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    "topic", ["", "tasks/exit", "/", "/tasks/", "//exit", "/tasks//exit", "/tasks/ex it", "/tasks/éxit"]
)
def test_invalid_topics(topic):
    with pytest.raises(InvalidArgument, match="topic"):
        validate_topic(topic)


# ---------------------------------------------------------------- digests


@pytest.mark.parametrize(
    "algorithm,length", [("sha256", 64), ("sha384", 96), ("sha512", 128)]
)
def test_valid_digests(algorithm, length):
    hexpart = (HEX64 * 2)[:length]
    digest = f"{algorithm}:{hexpart}"
    assert parse_digest(digest) == (algorithm, hexpart)
    assert validate_digest(digest) == digest


@pytest.mark.parametrize(
    "digest",
    [
        "", "sha256", "sha256:", f"sha256:{HEX64[:-1]}", f"sha256:{HEX64}0", f"sha256:{HEX64.upper()}",
        f"SHA256:{HEX64}", f"md5:{HEX64[:32]}", f"sha256:{HEX64}\n", f"sha256:{HEX64[:-1]}\n",
        f"sha256:{HEX64[:-1]}\x00", f"sha256:../../{HEX64[6:]}", f"sha256:{HEX64[:32]}/{HEX64[:31]}",
        f"sha256/{HEX64}", f":{HEX64}", f"sha256:{HEX64[:-1]}g", f" sha256:{HEX64}",
        f"sha384:{HEX64}", f"sha256:{HEX64[:-1]}é",
    ],
)
def test_invalid_digests(digest):
    with pytest.raises(InvalidArgument, match="digest"):
        parse_digest(digest)
    with pytest.raises(InvalidArgument):
        validate_digest(digest)


def test_non_string_digest():
    with pytest.raises(InvalidArgument):
        validate_digest(b"sha256:" + HEX64.encode())


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_any_lowercase_hex_sha256_passes(hexpart):
    assert parse_digest(f"sha256:{hexpart}") == ("sha256", hexpart)


@given(
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    st.integers(min_value=0, max_value=63),
    st.characters().filter(lambda c: c not in "0123456789abcdef"),
)
def test_any_digest_with_one_foreign_character_fails(hexpart, at, ch):
    with pytest.raises(InvalidArgument):
        parse_digest(f"sha256:{hexpart[:at]}{ch}{hexpart[at + 1:]}")


# ---------------------------------------------------------------- labels


def test_labels_within_limit_pass():
    labels = {"containerd.io/gc.root": "2024-01-01", "k": "v" * (LABEL_MAX_BYTES - 1)}
    assert validate_labels(labels) is labels
    assert validate_labels({}) == {}
    assert validate_labels(None) is None


def test_label_limit_counts_utf8_bytes_of_key_and_value():
    validate_labels({"kk": "é" * ((LABEL_MAX_BYTES - 2) // 2)})  # exactly 4096 bytes
    with pytest.raises(InvalidArgument, match=r"label 'kk'.*4097 bytes"):
        validate_labels({"kk": "é" * ((LABEL_MAX_BYTES - 2) // 2) + "x"})


@pytest.mark.parametrize(
    "labels", [{"": "v"}, {1: "v"}, {"k": 1}, {"k": None}, ["k", "v"], {"k": "\udc80"}]
)
def test_bad_labels_are_rejected(labels):
    with pytest.raises(InvalidArgument):
        validate_labels(labels)


def test_label_error_names_the_key():
    with pytest.raises(InvalidArgument, match="label 'bad'"):
        validate_labels({"ok": "v", "bad": 3})


# ---------------------------------------------------------------- free-form names


@pytest.mark.parametrize(
    "value",
    [
        "docker.io/library/busybox:latest", "lease with spaces", "default/1/sha256:abc",
        "layer-sha256:" + HEX64, "x" * FREE_FORM_MAX_BYTES, "名前", "../not-a-path-here",
    ],
)
def test_valid_free_form(value):
    assert validate_free_form(value, "image name") == value


@pytest.mark.parametrize(
    "value",
    ["", "x" * (FREE_FORM_MAX_BYTES + 1), "é" * 2049, "a\x00b", "a\nb", "a\tb", "a\x7fb", "a\x85b", "a\udc80", 5],
)
def test_invalid_free_form(value):
    with pytest.raises(InvalidArgument, match="snapshot key"):
        validate_free_form(value, "snapshot key")


def test_free_form_error_shows_control_position():
    with pytest.raises(InvalidArgument, match=r"position 3"):
        validate_free_form("abc\x1bd", "ingest ref")


@given(st.text(max_size=64))
def test_free_form_rule_matches_its_description(value):
    ok = (
        bool(value)
        and not re.search(r"[\x00-\x1f\x7f-\x9f]", value)
        and len(value.encode("utf-8", "surrogatepass")) <= FREE_FORM_MAX_BYTES
    )
    if ok:
        assert validate_free_form(value, "name") == value
    else:
        with pytest.raises(InvalidArgument):
            validate_free_form(value, "name")
