import enum
import re

import attrs
import pytest
from hypothesis import given, strategies as st

from wire import filters
from wire.errdefs import InvalidArgument
from wire.filters import ALWAYS, Filter, MappingAdaptor, Operator, Selector, parse, parse_any

GC_ROOT = "containerd.io/gc.root"

CORPUS = {
    "sandbox": {
        "id": "sb1",
        "name": "foo",
        "labels": {"io.cri-containerd.kind": "sandbox", GC_ROOT: "2024-01-01"},
    },
    "container": {
        "id": "c1",
        "name": "foo",
        "labels": {"io.cri-containerd.kind": "container", "foo": "true"},
    },
    "bar": {"id": "b", "name": "bar", "labels": {"bar": "true"}},
    "bare": {"id": "x", "name": "bar"},
    "complex": {"id": "cx", "name": "baz", "other": "too complex, yo", "labels": {"a b\\\"c": "present"}},
    "empty-name": {"id": "e", "name": "", "labels": {"foo": "omg_asdf.asdf-qwer"}},
}


def selected(text_or_texts) -> set[str]:
    f = parse(text_or_texts) if isinstance(text_or_texts, str) else parse_any(text_or_texts)
    return {key for key, obj in CORPUS.items() if f.match(MappingAdaptor(obj))}


ALL = set(CORPUS)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", ALL),
        ("name", ALL),
        ("other", {"complex"}),
        ("labels.foo", {"container", "empty-name"}),
        ("labels.foo,name", {"container", "empty-name"}),
        ("labels.foo==true", {"container"}),
        ("labels.foo==omg_asdf.asdf-qwer", {"empty-name"}),
        ("name==bar", {"bar", "bare"}),
        ("name!=bar", ALL - {"bar", "bare"}),
        ("name==bar,labels.bar", {"bar"}),
        ('other=="too complex, yo"', {"complex"}),
        ("other~=[abc]+,name!=foo", {"complex"}),
        ("other~=/[abc]{1,2}/,name!=foo", {"complex"}),
        ("other~=|c.m|", {"complex"}),
        ('labels."io.cri-containerd.kind"==sandbox', {"sandbox"}),
        ('labels."containerd.io/gc.root"', {"sandbox"}),
        ('labels."a b\\\\\\"c"==present', {"complex"}),
        ("name==", None),
        ("name==foo , labels.foo == true", {"container"}),
        ("  id  ==  c1  ", {"container"}),
        ("name==\"\"", {"empty-name"}),
        ("name~=^$", {"empty-name"}),
        ("name~=^b", {"bar", "bare", "complex"}),
        ("name==foo,name==bar", set()),
    ],
)
def test_selects_like_containerd(text, expected):
    if expected is None:
        with pytest.raises(InvalidArgument):
            parse(text)
    else:
        assert selected(text) == expected


def test_reference_examples():
    snapshot = MappingAdaptor({"kind": "committed", "parent": "sha256:" + "a" * 64, "name": "n"})
    assert parse(f"kind==committed,parent==sha256:{'a' * 64}").match(snapshot)
    assert not parse(f"kind==active,parent==sha256:{'a' * 64}").match(snapshot)
    event = MappingAdaptor({"namespace": "default", "topic": "/tasks/exit", "event": {"container_id": "c1"}})
    assert parse('topic~="/tasks/"').match(event)
    assert parse('topic=="/tasks/exit"').match(event)
    assert parse("event.container_id==c1").match(event)
    assert not parse('topic~="/images/"').match(event)


def test_comma_is_and_list_is_or():
    assert selected(["name==bar", "labels.foo==true"]) == {"bar", "bare", "container"}
    assert selected(["name==nothing", "id==sb1,name==foo"]) == {"sandbox"}
    assert selected(["name==nothing"]) == set()


def test_empty_filters_match_everything():
    assert parse("") == ALWAYS
    assert parse_any([]) == ALWAYS
    assert parse_any(["name==nobody", ""]).matches_everything
    assert selected([]) == ALL
    assert not Filter(alternatives=()).match(MappingAdaptor({}))


def test_not_equal_on_absent_field_matches_except_against_empty():
    absent = MappingAdaptor({})
    assert parse("labels.x!=y").match(absent)
    assert parse("x!=y").match(absent)
    # containerd compares the absent field as "": x!="" does not match it.
    assert not parse('x!=""').match(absent)
    assert not parse("x==y").match(absent)
    assert not parse('x==""').match(absent)
    assert parse('x==""').match(MappingAdaptor({"x": ""}))


def test_regex_on_absent_field_searches_empty_string():
    absent = MappingAdaptor({})
    assert parse("x~=^$").match(absent)
    assert parse("x~=/.*/").match(absent)
    with pytest.raises(InvalidArgument, match="quoted"):
        parse("x~=.*")  # '.' first is a separator to containerd too
    assert not parse("x~=/./").match(absent)


def test_presence_counts_empty_values_as_present():
    assert parse("x").match(MappingAdaptor({"x": ""}))
    assert not parse("x").match(MappingAdaptor({"y": "1"}))
    assert not parse("x").match(MappingAdaptor({"x": None}))


def test_regex_is_unanchored_search():
    assert parse("name~=oo").match(MappingAdaptor({"name": "foo"}))
    assert parse("name~=^f").match(MappingAdaptor({"name": "foo"}))
    assert not parse("name~=^o").match(MappingAdaptor({"name": "foo"}))


# ---------------------------------------------------------------- quoting and values


def test_value_starting_with_slash_needs_double_quotes():
    with pytest.raises(InvalidArgument) as info:
        parse("topic==/tasks/exit")
    assert "position 7" in info.value.message
    assert "double quotes" in info.value.message
    assert parse('topic=="/tasks/exit"').match(MappingAdaptor({"topic": "/tasks/exit"}))


@pytest.mark.parametrize("first", list("/|.,=!~"))
@pytest.mark.parametrize("op", ["==", "!="])
def test_values_with_special_first_char_must_be_quoted(first, op):
    with pytest.raises(InvalidArgument):
        parse(f"a{op}{first}x")
    f = parse(f'a{op}"{first}x"')
    assert f.alternatives[0][0].value == f"{first}x"


def test_alternative_regex_quotes_only_after_match_operator():
    assert parse("a~=/x|y/").alternatives[0][0].value == "x|y"
    assert parse("a~=|x/y|").alternatives[0][0].value == "x/y"
    assert parse(r"a~=/x\/y/").alternatives[0][0].value == "x/y"
    for text in ["a==|x|", "labels.|foo|==x", "/a/==x", "a!=/x/"]:
        with pytest.raises(InvalidArgument):
            parse(text)


def test_slash_and_dash_keys_need_quoting():
    with pytest.raises(InvalidArgument, match="quoted"):
        parse("labels.containerd.io/gc.root")
    with pytest.raises(InvalidArgument, match="quoted"):
        parse("labels.io.cri-containerd.kind==sandbox")


def test_single_quotes_are_not_quotes():
    f = parse("a=='x'")
    assert f.alternatives[0][0].value == "'x'"
    with pytest.raises(InvalidArgument):
        parse("labels.'k'==x")


def test_values_may_contain_punctuation_after_the_first_char():
    f = parse('a==x/y=z"w.v|~!,b')
    assert [s.value for s in f.alternatives[0]] == ['x/y=z"w.v|~!', ""]
    assert f.alternatives[0][1].operator is Operator.PRESENT


@pytest.mark.parametrize(
    "quoted,value",
    [
        (r'"a\nb"', "a\nb"),
        (r'"\t\r\a\b\f\v\\"', "\t\r\a\b\f\v\\"),
        (r'"say \"hi\""', 'say "hi"'),
        (r'"\x41\101\u00e9\U0001F600"', "AAé😀"),
        (r'"\xc3\xa9"', "é"),  # raw bytes forming UTF-8
        (r'"\ud800"', "\ufffd"),  # Go encodes a surrogate as U+FFFD
        ('"a,b c=d"', "a,b c=d"),
        ('"牛"', "牛"),
        ('""', ""),
    ],
)
def test_go_escapes_in_quoted_values(quoted, value):
    assert parse(f"a=={quoted}").alternatives[0][0].value == value


def test_invalid_utf8_escape_keeps_raw_byte_and_prints_back():
    sel = parse(r'a=="\xff"').alternatives[0][0]
    assert sel.value == "\udcff"
    assert sel.text() == r'a=="\xff"'
    assert not sel.match(MappingAdaptor({"a": "ÿ"}))


@pytest.mark.parametrize(
    "text,message",
    [
        (r'a=="\q"', "illegal escape"),
        (r'a=="\xag"', "hex digits"),
        (r'a=="\08"', "octal digits"),
        (r'a=="\400"', "above"),
        (r'a=="\U00110000"', "beyond Unicode"),
        (r"""a=="\'" """, "illegal escape"),
        (r'a~=/\"/', "illegal escape"),
        ('a=="abc', "not terminated"),
        ('a=="ab\nc"', "not terminated"),
        ('a=="ab\\', "not terminated"),
        ('labels."x', "not terminated"),
    ],
)
def test_bad_quoted_literals(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse(text)


@pytest.mark.parametrize(
    "text,position,what",
    [
        ("name==foo,", 10, "expected a field name"),
        ("labels.", 7, "expected a field name"),
        ("image~=,id==x", 7, "expected a value"),
        ("a==", 3, "expected a value"),
        ("a=b", 1, "unsupported operator '='"),
        ("a==!b", 1, "unsupported operator '==!'"),
        ("a==b c", 5, "expected ',' or end of filter"),
        ("a==b,,c", 5, "expected a field name"),
        (",a", 0, "expected a field name"),
        ("   ", 3, "expected a field name"),
        ("a b", 2, "expected an operator"),
        ("a\x00b", 1, "not allowed"),
        ("a==\x01", 3, "expected a value"),
        ("a~=(", 3, "regular expression"),
    ],
)
def test_parse_errors_say_where_and_what_was_expected(text, position, what):
    with pytest.raises(InvalidArgument) as info:
        parse(text)
    assert f"position {position}" in info.value.message
    assert what in info.value.message


def test_parse_rejects_non_strings():
    with pytest.raises(InvalidArgument):
        parse(b"name")
    with pytest.raises(InvalidArgument):
        parse_any("name==x")  # a bare string is not a list of filters
    with pytest.raises(InvalidArgument):
        parse_any(["name", 3])


def test_lone_surrogate_in_text_is_rejected():
    with pytest.raises(InvalidArgument, match="not allowed"):
        parse("a==\udc80")


# ---------------------------------------------------------------- RE2 compatibility


@pytest.mark.parametrize(
    "pattern,value,matches",
    [
        ("x$", "x\n", False),  # RE2 $ is end of text; Python's $ also matches before a final \n
        ("x$", "x", True),
        ("(?m)x$", "x\ny", True),
        (r"x\z", "x\n", False),
        (r"\d", "٣", False),  # RE2 \d is ASCII
        (r"\d", "3", True),
        (r"\w+", "é", False),
        (r"\s", "\v", False),
        (r"\bx", "éx", True),  # ASCII word boundary
        ("[[:digit:]]", "7", True),
        ("[[:alpha:]]", "7", False),
        ("[^[:alpha:]]", "7", True),
        (r"[\d_]", "_", True),
        (r"\Q.*\E", "a.*b", True),
        (r"\Q.*\E", "ab", False),
        (r"\101", "A", True),
        (r"\x{41}", "A", True),
        ("(?<n>a)b", "ab", True),
        ("(?P<n>a)b", "ab", True),
        ("(?i)FOO", "foo", True),
        ("(?i:F)oo", "foo", True),
        ("a(?i)b", "aB", True),  # flags mid-pattern last to the end of the group
        ("a(?i)b", "AB", False),
        ("a(?i)b|c", "C", True),
        ("(a(?i)b|c)d", "Cd", True),
        ("(a(?i)b|c)d", "cD", False),
        ("a$(?m)b$", "ab\n", False),
        ("(?m)b$", "b\nc", True),
        ("((?m)a$)", "a\nb", True),
        ("((?m)a)$", "a\n", False),
        ("a{,2}", "a{,2}", True),
        ("[]a]", "]", True),
        ("[[]", "[", True),
        ("[a&&b]", "&", True),
        ("牛", "牛", True),
    ],
)
def test_regex_behaves_like_re2(pattern, value, matches):
    sel = Selector(path=("v",), operator=Operator.MATCHES, value=pattern)
    assert sel.match(MappingAdaptor({"v": value})) is matches


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(?>a)", "a*+", "a++", r"\pL", r"\p{Greek}",
     "(?U)a*", "(?)", "[[:^alpha:]]", r"[\D]", "(?#c)", "(?P=n)", "[a", "a(", "*", r"\x{110000}", "\\"],
)
def test_regexes_outside_re2_or_unsupported_are_parse_errors(pattern):
    with pytest.raises(InvalidArgument, match="regular expression"):
        Selector(path=("v",), operator=Operator.MATCHES, value=pattern)
    with pytest.raises(InvalidArgument, match="position 3"):
        parse(f"v~={filters._go_quote(pattern)}")


def test_regex_is_compiled_once_at_parse_time(monkeypatch):
    f = parse("topic~=^/tasks/,event.id~=[0-9]+")
    boom = lambda *a, **k: pytest.fail("compiled while matching")  # noqa: E731
    monkeypatch.setattr(re, "compile", boom)
    monkeypatch.setattr(filters, "_compile", boom)
    event = MappingAdaptor({"topic": "/tasks/exit", "event": {"id": "12"}})
    assert all(f.match(event) for _ in range(3))


# ---------------------------------------------------------------- MappingAdaptor


class Color(enum.Enum):
    RED = "red"


@attrs.frozen
class Target:
    digest: str
    size: int


@attrs.frozen
class Image:
    name: str
    target: Target
    labels: dict
    annotations: dict = attrs.Factory(dict)


def test_mapping_adaptor_rejoins_labels_and_annotations():
    obj = {"labels": {"a.b": "1", "a": "no"}, "annotations": {"org.opencontainers.x": "y"}}
    adaptor = MappingAdaptor(obj)
    assert adaptor.field(("labels", "a", "b")) == "1"
    assert adaptor.field(("labels", "a")) == "no"
    assert adaptor.field(("annotations", "org", "opencontainers", "x")) == "y"
    assert adaptor.field(("labels",)) is None
    assert adaptor.field(("labels", "c")) is None


def test_mapping_adaptor_rejoins_labels_below_the_top():
    event = MappingAdaptor({"event": {"name": "img", "labels": {"x.y": "z"}}})
    assert parse("event.labels.x.y==z").match(event)
    assert parse('event.labels."x.y"==z').match(event)


def test_mapping_adaptor_walks_other_dicts_by_component():
    adaptor = MappingAdaptor({"runtime": {"name": "io.dockyard.runc.v1"}, "a.b": "flat"})
    assert adaptor.field(("runtime", "name")) == "io.dockyard.runc.v1"
    assert adaptor.field(("runtime", "name", "deeper")) is None
    assert adaptor.field(("a", "b")) is None
    assert adaptor.field(("runtime",)) is None  # a container is not a value


def test_mapping_adaptor_stringifies_the_go_way():
    adaptor = MappingAdaptor({"t": True, "f": False, "n": 12, "c": Color.RED, "z": None, "l": [1]})
    assert adaptor.field(("t",)) == "true"
    assert adaptor.field(("f",)) == "false"
    assert adaptor.field(("n",)) == "12"
    assert adaptor.field(("c",)) == "red"
    assert adaptor.field(("z",)) is None
    assert adaptor.field(("l",)) is None
    assert parse("n==12,t==true").match(adaptor)


def test_mapping_adaptor_reads_attrs_fields_only():
    image = Image(name="busybox", target=Target(digest="sha256:" + "b" * 64, size=3), labels={GC_ROOT: "x"})
    adaptor = MappingAdaptor(image)
    assert parse(f'name==busybox,target.size==3,labels."{GC_ROOT}"').match(adaptor)
    assert adaptor.field(("target", "digest")) == "sha256:" + "b" * 64
    assert adaptor.field(("__class__",)) is None
    assert adaptor.field(("__init__",)) is None
    assert MappingAdaptor(object()).field(("__class__",)) is None


# ---------------------------------------------------------------- printing and properties


def test_texts_round_trip_examples():
    for text in [
        'labels."io.cri-containerd.kind"==sandbox',
        'topic~="/tasks/"',
        "kind==committed,parent==sha256:abc",
        'a==""',
        'labels."a\\nb"!="\\x00"',
    ]:
        f = parse(text)
        assert f.texts() == (text,)
        assert parse(f.texts()[0]) == f


def test_selector_construction_is_checked():
    with pytest.raises(InvalidArgument):
        Selector(path=(), operator=Operator.PRESENT)
    with pytest.raises(InvalidArgument):
        Selector(path=("a",), operator=Operator.PRESENT, value="x")
    with pytest.raises(InvalidArgument):
        Selector(path=("a",), operator=Operator.EQUAL, value=3)


_GRAMMAR_ALPHABET = 'ab_9 .,=!~"/|\\\'\nxuU0-\x00é'


@given(st.text(alphabet=_GRAMMAR_ALPHABET, max_size=40))
def test_grammar_shaped_text_only_ever_raises_invalid_argument(text):
    try:
        f = parse(text)
    except InvalidArgument:
        return
    assert parse_any(f.texts()) == f


@given(st.text(max_size=60))
def test_any_text_only_ever_raises_invalid_argument(text):
    try:
        parse(text)
    except InvalidArgument:
        pass


@given(st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=8))
def test_text_with_surrogates_only_ever_raises_invalid_argument(text):
    try:
        parse("a==" + text)
    except InvalidArgument:
        pass


@given(st.text(max_size=30).map(lambda t: "a~=" + t))
def test_any_regex_text_only_ever_raises_invalid_argument(text):
    try:
        parse(text)
    except InvalidArgument:
        pass


_fields = st.one_of(st.from_regex(r"\A[A-Za-z0-9_]+\Z"), st.text(max_size=12))
_regexes = st.one_of(
    st.sampled_from(["^/tasks/", "[abc]+", "x$", r"\d{2,3}", "(?i)foo|bar", "a.b", "", "[[:alpha:]]"]),
    st.text(max_size=12).map(re.escape),
)


@st.composite
def selectors(draw):
    path = tuple(draw(st.lists(_fields, min_size=1, max_size=4)))
    op = draw(st.sampled_from(list(Operator)))
    if op is Operator.PRESENT:
        value = ""
    elif op is Operator.MATCHES:
        value = draw(_regexes)
    else:
        value = draw(st.text(max_size=16))
    return Selector(path=path, operator=op, value=value)


_filters = st.lists(st.lists(selectors(), max_size=4), max_size=4).map(
    lambda alts: Filter(alternatives=alts)
)


@given(_filters)
def test_printed_filters_parse_back_equal(f):
    texts = f.texts()
    back = parse_any(list(texts))
    if not f.alternatives:  # nothing to print: the empty list means "everything"
        assert back == ALWAYS
        return
    assert back == f
    for alternative, text in zip(f.alternatives, texts):
        assert parse(text).alternatives == (alternative,)


@given(
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=5),
    st.text(max_size=6),
    st.text(max_size=6),
)
def test_label_selectors_match_as_specified(labels, key, value):
    adaptor = MappingAdaptor({"labels": labels})
    quoted_key, quoted_value = filters._go_quote(key), filters._go_quote(value)
    assert parse(f"labels.{quoted_key}").match(adaptor) is (key in labels)
    assert parse(f"labels.{quoted_key}=={quoted_value}").match(adaptor) is (labels.get(key) == value)
    assert parse(f"labels.{quoted_key}!={quoted_value}").match(adaptor) is (labels.get(key, "") != value)
    quoted_regex = filters._go_quote(re.escape(value))
    assert parse(f"labels.{quoted_key}~={quoted_regex}").match(adaptor) is (value in labels.get(key, ""))
