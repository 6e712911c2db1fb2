"""containerd's filter language: parse once, match many times.

    parse('labels."io.cri-containerd.kind"==sandbox,name')   # AND within a string
    parse_any(['topic~="/tasks/"', 'namespace==k8s.io'])      # OR of several strings

Grammar (reference §17):

    selectors := selector ("," selector)*
    selector  := fieldpath [operator value]        no operator: the field must be present
    fieldpath := field ("." field)*
    field     := [A-Za-z0-9_]+ | "..."
    operator  := "==" | "!=" | "~="                 scanned as one run of = ! ~
    value     := "..." | run of printable chars other than "," and whitespace
                 after "~=" also /.../ or |...|

Quoted text uses Go escapes (\\n \\t \\" \\xNN \\NNN \\uNNNN \\UNNNNNNNN ...); single quotes are
not quotes.  A value starting with / | . , = ! ~ or " must be double-quoted for == and !=.
Whitespace between tokens is ignored.  Two deliberate departures from containerd's Go
parser, both following the reference: whitespace after a value or a bare field is
accepted (Go rejects it), and "-" is not a bare field character (Go accepts
``labels.foo-bar``; here it must be ``labels."foo-bar"``).

Semantics follow containerd's Go code: ``==`` needs the field present and equal; ``!=``
compares the value ("" when absent), so an absent field matches unless the value is "";
``~=`` is an unanchored search on the value ("" when absent).  Regexes are RE2 syntax,
translated to Python ``re`` where the two differ (see ``translate_re2``) and compiled at
parse time, so a bad regex is a parse error, not a silent non-match.

Every parse error is ``InvalidArgument`` saying where (position) and what was expected.
Pure code: no I/O, no Trio.
"""

from __future__ import annotations

import enum
import functools
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from wire.errdefs import InvalidArgument

__all__ = [
    "ALWAYS",
    "Adaptor",
    "Filter",
    "MappingAdaptor",
    "Operator",
    "Selector",
    "parse",
    "compile_re2",
    "parse_any",
    "translate_re2",
]


class Adaptor(Protocol):
    """Answers a field path with the field's value as text, or None when absent."""

    def field(self, path: tuple[str, ...]) -> str | None: ...


class Operator(str, enum.Enum):
    PRESENT = "?"  # never written: a bare fieldpath
    EQUAL = "=="
    NOT_EQUAL = "!="
    MATCHES = "~="


_OPERATORS = {op.value: op for op in Operator if op is not Operator.PRESENT}


# ---------------------------------------------------------------- AST and matching


@attrs.frozen(kw_only=True)
class Selector:
    """One ``fieldpath[operator value]`` term."""

    path: tuple[str, ...] = attrs.field(converter=tuple)
    operator: Operator = attrs.field(converter=Operator)
    value: str = ""
    _regex: re.Pattern[str] | None = attrs.field(init=False, default=None, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.path or not all(isinstance(name, str) for name in self.path):
            raise InvalidArgument(f"filter selector {self.path!r}: needs a non-empty path of strings")
        if not isinstance(self.value, str):
            raise InvalidArgument(f"filter selector {self.path!r}: value must be a string, not {self.value!r}")
        if self.operator is Operator.PRESENT and self.value:
            raise InvalidArgument(f"filter selector {self.path!r}: a presence test takes no value")
        if self.operator is Operator.MATCHES:
            object.__setattr__(self, "_regex", compile_re2(self.value))

    def match(self, adaptor: Adaptor) -> bool:
        value = adaptor.field(self.path)
        op = self.operator
        if op is Operator.EQUAL:
            return value is not None and value == self.value
        if op is Operator.NOT_EQUAL:
            return (value or "") != self.value
        if op is Operator.MATCHES:
            return self._regex.search(value or "") is not None  # type: ignore[union-attr]
        return value is not None

    def text(self) -> str:
        """This selector written in the filter language (parses back to an equal one)."""
        fieldpath = ".".join(_format_field(name) for name in self.path)
        if self.operator is Operator.PRESENT:
            return fieldpath
        return fieldpath + self.operator.value + _format_value(self.value)


@attrs.frozen(kw_only=True)
class Filter:
    """An OR of ANDs: matches when every selector of any one alternative matches.

    An empty alternative matches everything; a filter with no alternatives matches nothing.
    """

    alternatives: tuple[tuple[Selector, ...], ...] = attrs.field(
        converter=lambda alts: tuple(tuple(conj) for conj in alts)
    )

    @property
    def matches_everything(self) -> bool:
        return any(not conj for conj in self.alternatives)

    def match(self, adaptor: Adaptor) -> bool:
        for conj in self.alternatives:
            for selector in conj:
                if not selector.match(adaptor):
                    break
            else:
                return True
        return False

    def texts(self) -> tuple[str, ...]:
        """One filter string per alternative; ``parse_any(f.texts()) == f``."""
        return tuple(",".join(selector.text() for selector in conj) for conj in self.alternatives)


ALWAYS = Filter(alternatives=((),))


def parse(text: str) -> Filter:
    """Parse one filter string (its selectors are ANDed); "" matches everything."""
    return Filter(alternatives=(_parse_selectors(text),))


def parse_any(texts: Sequence[str]) -> Filter:
    """Parse several filter strings, ORed; an empty list matches everything."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise InvalidArgument(f"filters: must be a list of strings, not {type(texts).__name__}")
    if not texts:
        return ALWAYS
    return Filter(alternatives=tuple(_parse_selectors(text) for text in texts))


# ---------------------------------------------------------------- printing


_BARE_FIELD = re.compile(r"[A-Za-z0-9_]+")
_VALUE_FIRST_NEEDS_QUOTES = frozenset('/|.,=!~"')
_SIMPLE_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
    "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"',
}


def _format_field(name: str) -> str:
    return name if _BARE_FIELD.fullmatch(name) else _go_quote(name)


def _format_value(value: str) -> str:
    if value and value[0] not in _VALUE_FIRST_NEEDS_QUOTES and all(map(_is_value_char, value)):
        return value
    return _go_quote(value)


def _go_quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif "\udc80" <= ch <= "\udcff":  # a raw byte that came from a \x or octal escape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------- parsing


_QUOTES = frozenset('"/|')
_OPERATOR_CHARS = frozenset("=!~")
_OCTAL = frozenset("01234567")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPED = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_FORBIDDEN_CHAR = re.compile(r"[\x00\ud800-\udfff]")
_SHOWN_CHARS = 80


def _is_field_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _is_value_char(ch: str) -> bool:
    return ch != "," and not ch.isspace() and ch.isprintable()


def _parse_selectors(text: str) -> tuple[Selector, ...]:
    if not isinstance(text, str):
        raise InvalidArgument(f"filter {text!r}: must be a string, not {type(text).__name__}")
    if text == "":
        return ()
    return _Parser(text).selectors()


class _Parser:
    """Recursive descent over the characters of one filter string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, pos: int, message: str) -> InvalidArgument:
        shown = self.text if len(self.text) <= _SHOWN_CHARS else self.text[:_SHOWN_CHARS] + "..."
        near = self.text[pos : pos + 20]
        where = f"at position {pos} (near {near!r})" if near else f"at position {pos} (end of filter)"
        return InvalidArgument(f"filter {shown!r}: {where}: {message}")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def found(self) -> str:
        ch = self.peek()
        return f"found {ch!r}" if ch else "found end of filter"

    def selectors(self) -> tuple[Selector, ...]:
        bad = _FORBIDDEN_CHAR.search(self.text)
        if bad is not None:
            raise self.error(bad.start(), f"character {bad.group()!r} is not allowed in a filter")
        selectors = [self.selector()]
        while True:
            self.skip_space()
            ch = self.peek()
            if ch == "":
                return tuple(selectors)
            if ch != ",":
                raise self.error(self.pos, f"expected ',' or end of filter, {self.found()}")
            self.pos += 1
            selectors.append(self.selector())

    def selector(self) -> Selector:
        path = self.fieldpath()
        self.skip_space()
        if self.peek() in ("", ","):
            return Selector(path=path, operator=Operator.PRESENT)
        op_pos = self.pos
        operator = self.operator()
        value_pos, value = self.value(operator)
        try:
            return Selector(path=path, operator=operator, value=value)
        except InvalidArgument as exc:  # a regex that does not compile
            raise self.error(value_pos if operator is Operator.MATCHES else op_pos, exc.message) from None

    def fieldpath(self) -> tuple[str, ...]:
        fields = [self.field()]
        while True:
            self.skip_space()
            if self.peek() != ".":
                return tuple(fields)
            self.pos += 1
            fields.append(self.field())

    def field(self) -> str:
        self.skip_space()
        start = self.pos
        ch = self.peek()
        if ch and _is_field_char(ch):
            while self.pos < len(self.text) and _is_field_char(self.text[self.pos]):
                self.pos += 1
            return self.text[start : self.pos]
        if ch == '"':
            return self.quoted()
        if ch in _QUOTES and ch:
            raise self.error(start, f"a field cannot be quoted with {ch!r}: use \"...\" (e.g. labels.\"a/b\")")
        raise self.error(start, f"expected a field name [A-Za-z0-9_]+ or a \"quoted\" field, {self.found()}")

    def operator(self) -> Operator:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _OPERATOR_CHARS:
            self.pos += 1
        written = self.text[start : self.pos]
        if not written:
            hint = ""
            if self.peek() and not _is_value_char(self.peek()) or self.peek() in ("-", "/", ":"):
                hint = ' (a field with other characters must be quoted: labels."containerd.io/gc.root")'
            raise self.error(start, f"expected an operator (==, != or ~=), ',' or end of filter, {self.found()}{hint}")
        operator = _OPERATORS.get(written)
        if operator is None:
            raise self.error(start, f"unsupported operator {written!r}: expected ==, != or ~=")
        return operator

    def value(self, operator: Operator) -> tuple[int, str]:
        self.skip_space()
        start = self.pos
        ch = self.peek()
        if ch == '"' or (ch in _QUOTES and ch and operator is Operator.MATCHES):
            return start, self.quoted()
        if ch in ("", ","):
            raise self.error(start, f'expected a value after {operator.value}, {self.found()} (write "" for an empty value)')
        if ch in _VALUE_FIRST_NEEDS_QUOTES:
            how = ('quoted ("...", /.../ or |...|)' if operator is Operator.MATCHES
                   else 'written in double quotes (e.g. topic=="/tasks/exit")')
            raise self.error(start, f"a value starting with {ch!r} must be {how} after {operator.value}")
        if not _is_value_char(ch):
            raise self.error(start, f"expected a value after {operator.value}, {self.found()}")
        while self.pos < len(self.text) and _is_value_char(self.text[self.pos]):
            self.pos += 1
        return start, self.text[start : self.pos]

    def quoted(self) -> str:
        """Scan a quoted literal at ``pos`` (opening quote included) and return its text."""
        start = self.pos
        quote = self.text[start]
        self.pos += 1
        out = bytearray()
        while True:
            ch = self.peek()
            if ch in ("", "\n"):
                raise self.error(start, f"quoted literal not terminated: missing closing {quote}")
            if ch == quote:
                self.pos += 1
                return out.decode("utf-8", "surrogateescape")
            if ch == "\\":
                out += self.escape(quote)
            else:
                out += ch.encode("utf-8")
                self.pos += 1

    def escape(self, quote: str) -> bytes:
        start = self.pos
        self.pos += 1
        kind = self.peek()
        self.pos += 1
        if kind in _ESCAPED:
            return _ESCAPED[kind].encode()
        if kind == quote:
            return quote.encode()
        if kind in _OCTAL and kind:
            digits = kind + self.digits(start, _OCTAL, 2, "octal")
            if int(digits, 8) > 0xFF:
                raise self.error(start, f"octal escape \\{digits} is above \\377")
            return bytes([int(digits, 8)])
        if kind == "x":
            return bytes([int(self.digits(start, _HEX, 2, "hex"), 16)])
        if kind in ("u", "U"):
            code = int(self.digits(start, _HEX, 4 if kind == "u" else 8, "hex"), 16)
            if code > 0x10FFFF:
                raise self.error(start, f"escape \\{kind}{code:x} is beyond Unicode")
            if 0xD800 <= code <= 0xDFFF:  # Go encodes a surrogate as U+FFFD
                code = 0xFFFD
            return chr(code).encode("utf-8")
        if kind in ("", "\n"):
            raise self.error(start, "quoted literal not terminated after '\\'")
        raise self.error(start, f"illegal escape sequence \\{kind}")

    def digits(self, start: int, allowed: frozenset[str], count: int, what: str) -> str:
        digits = self.text[self.pos : self.pos + count]
        if len(digits) != count or not all(ch in allowed for ch in digits):
            raise self.error(start, f"illegal escape sequence: expected {count} {what} digits")
        self.pos += count
        return digits


# ---------------------------------------------------------------- RE2 -> Python re


class _Unsupported(Exception):
    pass


_PERL_CLASSES = {
    "d": "[0-9]", "D": "[^0-9]",
    "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]",
    "s": "[\\t\\n\\f\\r ]", "S": "[^\\t\\n\\f\\r ]",
}
_PERL_IN_CLASS = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_FLAG_GROUP = re.compile(r"[imsU]*(?:-[imsU]*)?[:)]")
_OCTAL_ESCAPE = re.compile(r"0[0-7]{0,2}|[1-7][0-7]{1,2}")
_BRACED_HEX = re.compile(r"x\{([0-9A-Fa-f]{1,8})\}")


def translate_re2(pattern: str) -> str:
    """Rewrite an RE2 pattern so Python ``re`` gives the same matches.

    Translated: ``$`` (end of text unless the m flag is used), ``\\z``, ``\\Q...\\E``,
    ``\\d \\w \\s \\b`` (ASCII in RE2), POSIX ``[:name:]`` classes, octal and ``\\x{...}``
    escapes, ``(?<name>...)``, literal ``{,``.  Rejected with ValueError: what RE2 does not
    have (backreferences, lookaround, atomic groups, possessive quantifiers) and what this
    translation does not cover (``\\p`` classes, the U flag, negated classes inside ``[...]``).
    """
    try:
        return _Translator(pattern).run()
    except _Unsupported as exc:
        raise ValueError(str(exc)) from None


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Translate and compile; InvalidArgument if the regex is bad or unsupported."""
    try:
        translated = translate_re2(pattern)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _compile(translated)
    except (ValueError, re.error, RecursionError, OverflowError) as exc:
        raise InvalidArgument(f"regular expression {pattern!r}: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _compile(translated: str) -> re.Pattern[str]:
    return re.compile(translated)


@attrs.define
class _Group:
    """One open group of the pattern being translated."""

    multiline: bool
    # Flags set mid-group with (?flags): RE2 keeps them to the group's end, Python 3.11
    # only allows them at the start, so each becomes a scoped (?flags: closed at | and ).
    scoped: list[str] = attrs.Factory(list)


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.groups = [_Group(multiline=False)]

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape(in_class=False))
            elif c == "[":
                self.char_class()
            elif c == "$" and not self.groups[-1].multiline:
                self.out.append("\\Z")
                self.i += 1
            elif c == "(":
                self.group_opening()
            elif c == ")" and len(self.groups) > 1:
                self.out.append(")" * len(self.groups.pop().scoped) + ")")
                self.i += 1
            elif c == "|":
                scoped = self.groups[-1].scoped
                self.out.append(")" * len(scoped) + "|" + "".join(f"(?{f}:" for f in scoped))
                self.i += 1
            elif c in "*+?" and p.startswith("+", self.i + 1):
                raise _Unsupported(f"possessive quantifier {c}+ at {self.i} is not RE2 syntax")
            elif p.startswith("{,", self.i):
                self.out.append("\\{")  # RE2 reads "{," literally; Python as {0,n}
                self.i += 1
            else:
                self.out.append(c)
                self.i += 1
        self.out.append(")" * len(self.groups[0].scoped))
        return "".join(self.out)

    def group_opening(self) -> None:
        current = self.groups[-1]
        rest = self.p[self.i + 1 :]
        if not rest.startswith("?"):
            opening, consumed = "(", 1
        elif rest.startswith("?P<"):
            opening, consumed = "(?P<", 4
        elif rest.startswith("?<") and not rest.startswith(("?<=", "?<!")):
            opening, consumed = "(?P<", 3  # Go 1.22's (?<name>...)
        else:
            flags = _FLAG_GROUP.match(rest, 1)
            if flags is None or flags.group() == ")":
                raise _Unsupported(f"group {self.p[self.i:self.i + 4]!r} at {self.i} is not RE2 syntax")
            if "U" in flags.group():
                raise _Unsupported("flag U (ungreedy) is not supported")
            on, _, off = flags.group()[:-1].partition("-")
            multiline = ("m" in on) or (current.multiline and "m" not in off)
            self.i += 1 + len(flags.group()) + 1
            if flags.group().endswith(":"):
                self.out.append("(?" + flags.group())
                self.groups.append(_Group(multiline=multiline))
            else:
                self.out.append(f"(?{flags.group()[:-1]}:")
                current.scoped.append(flags.group()[:-1])
                current.multiline = multiline
            return
        self.out.append(opening)
        self.i += consumed
        self.groups.append(_Group(multiline=current.multiline))

    def escape(self, in_class: bool) -> str:
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise _Unsupported("trailing backslash")
        e = p[i + 1]
        self.i += 2
        if e in "pP":
            raise _Unsupported(f"Unicode class \\{e} is not supported")
        if e in _OCTAL and e:
            octal = _OCTAL_ESCAPE.match(p, i + 1)
            if octal is None:
                raise _Unsupported(f"backreference \\{e} is not RE2 syntax")
            self.i = octal.end()
            return f"\\u{int(octal.group(), 8):04x}"
        if e == "x":
            braced = _BRACED_HEX.match(p, i + 1)
            if braced is not None:
                self.i = braced.end()
                code = int(braced.group(1), 16)
                if code > 0x10FFFF:
                    raise _Unsupported(f"escape \\x{{{braced.group(1)}}} is beyond Unicode")
                return f"\\U{code:08x}"
            return "\\x"
        if in_class:
            if e in _PERL_IN_CLASS:
                return _PERL_IN_CLASS[e]
            if e in "DWSQ":
                raise _Unsupported(f"\\{e} inside [...] is not supported")
            return "\\" + e
        if e in _PERL_CLASSES:
            return _PERL_CLASSES[e]
        if e in "bB":
            return f"(?a:\\{e})"
        if e == "z":
            return "\\Z"
        if e == "Q":
            end = p.find("\\E", self.i)
            literal = p[self.i :] if end < 0 else p[self.i : end]
            self.i = len(p) if end < 0 else end + 2
            return re.escape(literal)
        return "\\" + e

    def char_class(self) -> None:
        p = self.p
        self.out.append("[")
        self.i += 1
        if p.startswith("^", self.i):
            self.out.append("^")
            self.i += 1
        first = True
        while True:
            if self.i >= len(p):
                raise _Unsupported("missing closing ]")
            c = p[self.i]
            if c == "]" and not first:
                self.out.append("]")
                self.i += 1
                return
            first = False
            if p.startswith("[:", self.i):
                end = p.find(":]", self.i + 2)
                name = p[self.i + 2 : end] if end >= 0 else ""
                if name.startswith("^") and name[1:] in _POSIX_CLASSES:
                    raise _Unsupported(f"negated class [:{name}:] is not supported")
                if name in _POSIX_CLASSES:
                    self.out.append(_POSIX_CLASSES[name])
                    self.i = end + 2
                    continue
            if c == "\\":
                self.out.append(self.escape(in_class=True))
                continue
            self.out.append("\\" + c if c in "[]&~|" else c)
            self.i += 1


# ---------------------------------------------------------------- adaptor for plain data


_REJOINED = frozenset({"labels", "annotations"})
_ABSENT = object()


@attrs.frozen
class MappingAdaptor:
    """Adapts nested mappings and attrs instances to the filter language.

    Paths are walked component by component; under ``labels`` or ``annotations`` the rest of
    the path is joined with "." into one key (``labels.a.b`` looks up ``"a.b"``).  Leaves are
    rendered as Go would print them (``true``, ``12``); None, containers and other objects
    count as absent.
    """

    obj: object

    def field(self, path: tuple[str, ...]) -> str | None:
        current = self.obj
        for index, name in enumerate(path):
            current = _child(current, name)
            if current is _ABSENT:
                return None
            if name in _REJOINED and isinstance(current, Mapping):
                return _as_text(current.get(".".join(path[index + 1 :]), _ABSENT))
        return _as_text(current)


def _child(parent: object, name: str) -> object:
    if isinstance(parent, Mapping):
        return parent.get(name, _ABSENT)
    if name in _attrs_field_names(type(parent)):
        return getattr(parent, name)
    return _ABSENT


@functools.lru_cache(maxsize=256)
def _attrs_field_names(cls: type) -> frozenset[str]:
    if not attrs.has(cls):
        return frozenset()
    return frozenset(a.name for a in attrs.fields(cls))


def _as_text(value: object) -> str | None:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None
