"""Tests for the YAML adapter: canonical round trips, fast-path soundness, hostile input."""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from orchestrator.adapters import yaml as Y
from orchestrator.adapters.yaml import (
    MAX_DOCUMENT_BYTES,
    dump_config_text,
    dump_document,
    load_config_text,
    load_document,
)
from orchestrator.adapters.yaml_fast import fast_load
from orchestrator.errors import EventFileError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ruamel_load(data: bytes) -> Any:
    """Plain ruamel.yaml safe load (YAML 1.2): the reference the fast path must agree with."""
    return YAML(typ="safe", pure=True).load(data)


def slow_load(data: bytes) -> dict[str, Any]:
    return Y._safe_load(data.decode(), "t.yaml", empty_ok=False)


def typed(value: Any) -> str:
    """repr tells 1 from 1.0 from True and -0.0 from 0.0, and keeps key order."""
    return repr(value)


# -- strategies ----------------------------------------------------------------------------

TRICKY_CHARS = (
    "\u2028\u2029\x85\x7f\x9f\ufeff\ufffe\uffff\x00\t\r\n\\\"'#:-?&*!|>%@`{}[],😀\U0010ffff"
)
chars = st.characters(exclude_categories=["Cs"]) | st.sampled_from(TRICKY_CHARS)
texts = st.text(chars, max_size=12)
keys = texts | st.sampled_from(
    [
        "yes",
        "No",
        "on",
        "OFF",
        "y",
        "n",
        "true",
        "Null",
        "~",
        "1",
        "1.5",
        "a b",
        "",
        "_",
        "a.b-c",
        "<<",
        "=",
        "x: y",
        "- a",
        "#c",
        "2026-01-01",
        ".inf",
        "task_id",
        "id",
    ]
)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e-05, 1e300, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1, -2.5e-10]
)
ints = st.integers() | st.sampled_from(
    [2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**19), 0]
)
scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)
documents = st.dictionaries(keys, json_values, max_size=6)


# -- round trip ----------------------------------------------------------------------------


@SETTINGS
@given(documents)
def test_round_trip_fast_equals_original_equals_ruamel(doc: dict[str, Any]) -> None:
    data = dump_document(doc)
    text = data.decode("utf-8")
    assert text.endswith("\n") and "\t" not in text and "\r" not in text
    for line in text.split("\n")[:-1]:
        assert line and line == line.rstrip(" ") and (len(line) - len(line.lstrip(" "))) % 2 == 0
    fast = fast_load(data)
    assert fast is not None, data
    assert typed(fast) == typed(doc)
    assert typed(slow_load(data)) == typed(doc)
    assert typed(ruamel_load(data)) == typed(doc)
    assert typed(load_document(data, "t.yaml")) == typed(doc)


MUTATIONS = list("#\t\r\n -:?&*!|>'\"{}[],~%@\\0") + ["\u2028", "\x85", "\ufeff", "  ", "- ", ": "]


@SETTINGS
@given(
    documents, st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(MUTATIONS)), max_size=3)
)
def test_fast_reader_is_sound_on_mutated_input(doc: dict[str, Any], edits: list[Any]) -> None:
    """Whatever the fast reader accepts, YAML 1.2 (and the safe path) reads the same way."""
    text = dump_document(doc).decode()
    for pos, piece in edits:
        pos %= len(text) + 1
        text = text[:pos] + piece + text[pos:]
    data = text.encode("utf-8", "surrogatepass")
    fast = fast_load(data)
    if fast is None:
        return
    assert typed(ruamel_load(data)) == typed(fast)
    assert typed(slow_load(data)) == typed(fast)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), json_values, max_size=5))
def test_fast_reader_is_sound_on_compact_json_leaves(doc: dict[str, Any]) -> None:
    """Hand-made `key: <json>` lines (compact JSON, raw unicode) are read as YAML reads them."""
    import json

    lines = [
        f"{k}: {json.dumps(v, ensure_ascii=bool(len(k) % 2), separators=(',', ':'))}\n"
        for k, v in doc.items()
    ]
    data = "".join(lines).encode("utf-8", "surrogatepass") or b"{}\n"
    fast = fast_load(data)
    if fast is None:
        return
    assert typed(ruamel_load(data)) == typed(fast)


def test_golden_canonical_example() -> None:
    doc = {
        "id": "01J0",
        "type": "task.created",
        "yes": True,
        "a b": None,
        "payload": {
            "title": "Ship it\n\u2028\x85 😀",
            "labels": ["x", "y"],
            "tiny": 1e-05,
            "meta": {},
            "steps": [{"name": "w", "n": 1}, [1, 2]],
            "none": [],
        },
        "seq": 7,
    }
    assert dump_document(doc).decode() == (
        'id: "01J0"\n'
        'type: "task.created"\n'
        '"yes": true\n'
        '"a b": null\n'
        "payload:\n"
        '  title: "Ship it\\n\\u2028\\u0085 😀"\n'
        '  labels: ["x", "y"]\n'
        "  tiny: 1.0e-05\n"
        "  meta: {}\n"
        "  steps:\n"
        '    - {"name": "w", "n": 1}\n'
        "    - [1, 2]\n"
        "  none: []\n"
        "seq: 7\n"
    )
    assert dump_document({}) == b"{}\n"
    assert load_document(b"{}\n", "t.yaml") == {}


def test_dump_accepts_tuples_and_rejects_non_json() -> None:
    assert load_document(dump_document({"t": (1, (2, "x"))}), "t.yaml") == {"t": [1, [2, "x"]]}
    for bad in (
        {1: "int key"},
        {"a": {None: 1}},
        {"a": float("nan")},
        {"a": [float("inf")]},
        {"a": {1, 2}},
        {"a": b"bytes"},
        {"a": "lone \ud800 surrogate"},
        {"k" * 1001: 1},
        {"a": {"k" * 1001: 1}},
        {"a": "x" * MAX_DOCUMENT_BYTES},
    ):
        with pytest.raises(ValueError):
            dump_document(bad)  # type: ignore[arg-type]
    deep: Any = 1
    for _ in range(64):
        deep = [deep]
    with pytest.raises(ValueError):
        dump_document({"a": deep})
    assert load_document(dump_document({"a": deep[0]}), "t.yaml") == {"a": deep[0]}


def test_long_strings_and_big_numbers_round_trip() -> None:
    doc = {"s": "x" * 5000, "l": ["y" * 3000, {"k": "z" * 3000}], "big": 10**40, "f": 1.5e300}
    data = dump_document(doc)
    assert fast_load(data) == doc
    assert ruamel_load(data) == doc


# -- hostile input -------------------------------------------------------------------------


def load_error(data: bytes) -> EventFileError:
    start = time.perf_counter()
    with pytest.raises(EventFileError) as info:
        load_document(data, "ev.yaml")
    assert time.perf_counter() - start < 1.0, "hostile input must be rejected fast"
    assert info.value.path == "ev.yaml"
    return info.value


BILLION_LAUGHS = b"""\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("data", "reason", "line"),
    [
        (BILLION_LAUGHS, "anchors are not allowed", 1),
        (b"a: 1\nb: *x\n", "aliases are not allowed", 2),
        (b"a: " + b"[" * 10_000, "nested deeper than 64 levels", 1),
        (b"[" * 10_000, "nested deeper than 64 levels", 1),
        (b"a: " + b"{a: " * 10_000, "nested deeper than 64 levels", 1),
        (b"a:\n" + b"- " * 10_000 + b"x\n", "nested deeper than 64 levels", 2),
        (
            b"".join(b" " * i + b"a:\n" for i in range(700)) + b" " * 700 + b"a: 1\n",
            "nested deeper than 64 levels",
            65,
        ),
        (b"x: !!python/object/apply:os.system ['echo pwned']\n", "tags are not allowed", 1),
        (b"x: !foo bar\n", "tags are not allowed", 1),
        (b"x: !!str 1\n", "tags are not allowed", 1),
        (b'id: "a"\nn: 1\nid: "b"\n', "duplicate key 'id'", 3),
        (b"a:\n  b: 1  # comment\n  b: 2\n", "duplicate key 'b'", 3),
        (b'a:\n  - {"x": 1, "x": 2}\n', "duplicate key 'x'", 2),
        (b'a: {"x": [1, {"y": 1, "y": 1}]}\n', "duplicate key 'y'", 1),
        (b"a: 1\n" + b"b: 2\n" * (10 * 1024 * 1024 // 5), "over the 262144-byte limit", None),
        (b"a: \xff\xfe\n", "not valid UTF-8", 1),
        (b"a: 1\nb: 'x\xed\xa0\x80'\n", "not valid UTF-8", 2),
        (b"a: 1\nb: \x00\n", "NUL", 2),
        (b"a: \x1b[31m\n", "non-printable character U+001B", 1),
        (b"", "empty document", None),
        (b"# only a comment\n", "empty document", None),
        (b"---\n", "top level must be a mapping, not null", 1),
        (b"- a\n- b\n", "top level must be a mapping, not a list", 1),
        (b'"just a string"\n', "top level must be a mapping, not a string", 1),
        (b"a: 1\n---\nb: 2\n", "more than one YAML document", 2),
        (b"%YAML 1.1\n---\na: yes\n", "directives", 2),
        (b"a:\n\tb: 1\n", "invalid YAML", 2),
        (b"a: [1, 2\nb: 3\n", "invalid YAML", None),
        (b"1: a\n", "mapping keys must be strings, not an int", 1),
        (b"a:\n  ? [1, 2]\n  : x\n", "mapping keys must be strings, not a list", 2),
        (b"true: a\n", "mapping keys must be strings, not a bool", 1),
        (b"a: .inf\n", "non-finite float", 1),
        (b"a: .nan\n", "non-finite float", 1),
        (b"base: {x: 1}\nb:\n  <<: {y: 2}\n", "merge keys", 3),
        (b'a: "\\ud83d\\ude00"\n', "lone surrogate", 1),
        (b"a: =\n", "quote it", 1),
    ],
)
def test_hostile_input_is_rejected(data: bytes, reason: str, line: int | None) -> None:
    error = load_error(data)
    assert reason in error.reason
    if line is not None:
        assert error.line == line
    assert "Traceback" not in str(error)


def test_random_binary_is_rejected() -> None:
    rng = random.Random(1234)
    for size in (1, 16, 4096, 200_000):
        load_error(rng.randbytes(size))
    for _ in range(50):  # printable junk: any YAML-level outcome, never a crash
        junk = bytes(rng.choice(b" \n-:?[]{},&*!|>'\"#%@`ab1") for _ in range(200))
        with contextlib.suppress(EventFileError):
            load_document(junk, "ev.yaml")


def test_error_message_names_file_and_line() -> None:
    error = load_error(b"a: 1\na: 2\n")
    assert str(error) == "ev.yaml:2: duplicate key 'a'"


# -- hand-written (non-canonical) YAML --------------------------------------------------------

HAND_WRITTEN = b"""\
# An event written by hand.
type: task.created   # plain scalars
at: 2026-01-01T00:00:00Z
day: 2026-01-01
count: 0x1F
ratio: 1e-5
ok: yes
flag: true
nothing:
quoted: 'it''s'
body: |
  line one
  line two
folded: >-
  a
  b
list:
- a
- {b: c}
- [1, 2.0]
"""


def test_hand_written_yaml_loads_via_safe_path() -> None:
    assert fast_load(HAND_WRITTEN) is None
    assert load_document(HAND_WRITTEN, "ev.yaml") == {
        "type": "task.created",
        "at": "2026-01-01T00:00:00Z",
        "day": "2026-01-01",
        "count": 31,
        "ratio": 1e-05,
        "ok": "yes",
        "flag": True,
        "nothing": None,
        "quoted": "it's",
        "body": "line one\nline two\n",
        "folded": "a b",
        "list": ["a", {"b": "c"}, [1, 2.0]],
    }


@pytest.mark.parametrize(
    "data",
    [
        b'a: 1\r\nb: "x"\r\n',
        b'\xef\xbb\xbfa: 1\nb: "x"\n',
        b'---\na: 1\nb: "x"\n',
        b'a: 1\nb: "x"\n...\n',
        b'a: 1\n\nb: "x"\n',
        b'a: 1   \nb: "x"\n',
        b'  a: 1\n  b: "x"\n',
        b'a: 1\nb: "x" # c\n',
    ],
)
def test_near_canonical_variants_fall_back_and_load(data: bytes) -> None:
    assert fast_load(data) is None or fast_load(data) == {"a": 1, "b": "x"}
    assert load_document(data, "ev.yaml") == {"a": 1, "b": "x"}


def test_fast_reader_declines_non_canonical_shapes() -> None:
    for data in (
        b"a:\n",  # key with nothing under it: YAML reads null
        b"a:\nb: 1\n",
        b"a:\n- 1\n",  # sequence not indented under its key
        b"a:\n   b: 1\n",
        b"yes: 1\n",
        b"a: 1\na: 2\n",
        b"a: [1e400]\n",
        b"a: NaN\n",
        b'a: "\\ud800"\n',
        b"a: 1",
        b"a: 12345678901234567890123\n",  # goes to the careful path, still fast
    ):
        result = fast_load(data)
        if result is not None:
            assert typed(result) == typed(ruamel_load(data))
    assert fast_load(b"a: 12345678901234567890123\n") == {"a": 12345678901234567890123}
    assert fast_load(b"a: [-9223372036854775809]\n") == {"a": [-9223372036854775809]}


# -- config files --------------------------------------------------------------------------


def test_load_config_text() -> None:
    assert load_config_text("", "c.yaml") == {}
    assert load_config_text("# nothing yet\n", "c.yaml") == {}
    text = "provider:\n  name: openai  # default\n  timeout: 30\nagents: [planner, coder]\n"
    assert load_config_text(text, "c.yaml") == {
        "provider": {"name": "openai", "timeout": 30},
        "agents": ["planner", "coder"],
    }
    with pytest.raises(EventFileError) as info:
        load_config_text("a: &x 1\nb: *x\n", "c.yaml")
    assert info.value.line == 1 and info.value.path == "c.yaml"
    with pytest.raises(EventFileError):
        load_config_text("- 1\n", "c.yaml")
    with pytest.raises(EventFileError):
        load_config_text("a: '\udcff'\n", "c.yaml")
    with pytest.raises(EventFileError):
        load_config_text("a: 1\n" * (MAX_DOCUMENT_BYTES // 4), "c.yaml")


def test_dump_config_text_is_readable() -> None:
    text = dump_config_text({"b": 1, "a": {"x": ["p", "yes"], "at": "2026-01-01"}, "e": {}})
    assert text == "b: 1\na:\n  x:\n    - p\n    - yes\n  at: '2026-01-01'\ne: {}\n"
    assert load_config_text(text, "c.yaml") == {
        "b": 1,
        "a": {"x": ["p", "yes"], "at": "2026-01-01"},
        "e": {},
    }
    assert dump_config_text({}) == "{}\n"
    with pytest.raises(ValueError):
        dump_config_text({"a": float("nan")})


@settings(max_examples=60, deadline=None)
@given(documents)
def test_config_round_trip(doc: dict[str, Any]) -> None:
    assert typed(load_config_text(dump_config_text(doc), "c.yaml")) == typed(doc)
