"""Canonical event YAML: the writer and the fast line-by-line reader (no ruamel.yaml here)."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 64
# YAML implicit keys must end within 1024 characters; stay well inside that.
MAX_KEY_CHARS = 1000
# A key inside a JSON object leaf: 150 decoded chars can never render past 1000.
_MAX_FLOW_KEY_DECODED = 150

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
# Words some YAML reader (1.1 or 1.2) resolves to a bool, null or float: always quoted.
_SPECIAL_WORDS = frozenset(
    ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"]
)
_SPECIAL_KEYS = frozenset(  # every spelling, for one set lookup in the reader
    "".join(chars)
    for word in _SPECIAL_WORDS
    for chars in itertools.product(*((c, c.upper()) for c in word))
)
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters YAML reads differently from JSON (line breaks, BOM) or does not call printable.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")
_encode_str = json.encoder.encode_basestring

# The reader's byte screen: control bytes (all but LF) -> 0, digits -> "0", non-ASCII -> 0x80.
_SCREEN = bytes(
    0 if b < 0x20 and b != 0x0A or b == 0x7F else 0x30 if 0x30 <= b <= 0x39 else min(b, 0x80)
    for b in range(256)
)
# orjson turns integers beyond 64 bits into floats: 19+ digit runs go to stdlib json.
_LONG_DIGITS = b"0" * 19
# Valid UTF-8 that YAML reads differently from JSON (C1 controls, NEL, line and paragraph
# separators, BOM) or does not call printable (U+FFFE, U+FFFF).
_C1 = re.compile(b"\xc2[\x80-\x9f]")
_BAD_UTF8 = (b"\xe2\x80\xa8", b"\xe2\x80\xa9", b"\xef\xbb\xbf", b"\xef\xbf\xbe", b"\xef\xbf\xbf")
# YAML decodes \ud83d\ude00 as two lone surrogates, JSON as one character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# One canonical line: indentation, then `- <leaf>` or `<key>:` or `<key>: <leaf>`.
_LINE = re.compile(
    r'( *)(?:- (.*)|(?:([A-Za-z_][A-Za-z0-9_.-]{0,999})|("(?:[^"\\]|\\.)*")):(?: (.*))?)\Z'
)


class _NotCanonical(Exception):
    """Raised inside the fast reader to give up and fall back to the safe path."""


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _dump_str(value: str) -> str:
    if _SURROGATE.search(value) is not None:
        raise ValueError(f"string holds a lone surrogate: {value[:40]!r}")
    return _YAML_UNSAFE.sub(_escape, _encode_str(value))


def _dump_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot write the float {value!r} (NaN and infinities are not JSON)")
    text = float.__repr__(value)
    if "." not in text:  # 1e-05 -> 1.0e-05: YAML 1.1 needs the dot to read a float
        mantissa, _, exponent = text.partition("e")
        text = f"{mantissa}.0e{exponent}"
    return text


_plain_keys: dict[str, str] = {}  # cache: event documents repeat the same few keys


def _key_text(key: Any, flow: bool) -> str:
    if not flow and type(key) is str:
        text = _plain_keys.get(key)
        if text is not None:
            return text
    if not isinstance(key, str):
        raise ValueError(f"mapping keys must be strings, got {type(key).__name__}: {key!r}")
    key = str.__str__(key)
    if not flow and _PLAIN_KEY.match(key) and key.lower() not in _SPECIAL_WORDS:
        text = key
        if len(key) <= 64 and len(_plain_keys) < 4096:
            _plain_keys[key] = key
    else:
        text = _dump_str(key)
    if len(text) > MAX_KEY_CHARS:
        raise ValueError(f"mapping key longer than {MAX_KEY_CHARS} characters: {key[:40]!r}...")
    return text


def _is_collection(value: Any) -> bool:
    kind = type(value)
    return kind is dict or kind is list or isinstance(value, Mapping | list | tuple)


def _flow(value: Any, depth: int) -> str:
    """Single-line JSON for `value`, held by a collection at nesting level `depth`."""
    kind = type(value)
    if kind is str:
        return _dump_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _dump_float(value)
    if kind is dict or kind is list:
        pass
    elif isinstance(value, str):
        return _dump_str(str.__str__(value))
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        return int.__repr__(value)
    elif isinstance(value, float):
        return _dump_float(value)
    elif not isinstance(value, Mapping | list | tuple):
        raise ValueError(f"cannot write a {kind.__name__} to YAML: {value!r:.60}")
    if depth >= MAX_DEPTH:
        raise ValueError(f"document nested deeper than {MAX_DEPTH} levels")
    if kind is dict or isinstance(value, Mapping):
        items = [f"{_key_text(k, True)}: {_flow(v, depth + 1)}" for k, v in value.items()]
        return "{" + ", ".join(items) + "}"
    return "[" + ", ".join([_flow(v, depth + 1) for v in value]) + "]"


def _block(mapping: Mapping[Any, Any], indent: str, depth: int, out: list[str]) -> None:
    for key, value in mapping.items():
        head = f"{indent}{_key_text(key, False)}:"
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            out.append(f"{head} {_flow(value, depth)}\n")
            continue
        nested = value and _is_collection(value) and not isinstance(value, str)
        block_list = nested and not (kind is dict or isinstance(value, Mapping))
        if block_list and not any(_is_collection(v) for v in value):
            nested = block_list = False  # a list of scalars stays on one line
        if not nested:
            out.append(f"{head} {_flow(value, depth)}\n")
            continue
        if depth >= MAX_DEPTH:
            raise ValueError(f"document nested deeper than {MAX_DEPTH} levels")
        out.append(head + "\n")
        if block_list:
            out.extend([f"{indent}  - {_flow(v, depth + 1)}\n" for v in value])
        else:
            _block(value, indent + "  ", depth + 1, out)


def dump_document(data: Mapping[str, Any]) -> bytes:
    """Write `data` in the canonical form: block mappings, single-line JSON leaves."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a document must be a mapping, got {type(data).__name__}")
    out: list[str] = []
    _block(data, "", 1, out)
    encoded = "".join(out).encode() if out else b"{}\n"
    if len(encoded) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document is {len(encoded)} bytes, over {MAX_DOCUMENT_BYTES}")
    return encoded


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out or len(key) > _MAX_FLOW_KEY_DECODED:
            raise _NotCanonical(key)
        out[key] = value
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotCanonical(text)
    return value


def _constant(text: str) -> Any:
    raise _NotCanonical(text)  # NaN, Infinity: YAML reads these as strings


_careful = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_finite, parse_constant=_constant
).decode


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def fast_load(data: bytes) -> dict[str, Any] | None:
    """Parse a canonical document exactly as a YAML 1.2 parser would; None if not canonical."""
    try:
        return _fast_load(data)
    except Exception:  # any odd input: let the safe path judge it
        return None


def _fast_load(data: bytes) -> dict[str, Any] | None:
    text = data.decode()  # strict: invalid UTF-8 and encoded surrogates raise
    screen = data.translate(_SCREEN)
    if text[-1:] != "\n" or b"\0" in screen:
        return None
    if b"\x80" in screen and (
        (b"\xc2" in data and _C1.search(data) is not None) or any(seq in data for seq in _BAD_UTF8)
    ):
        return None
    if b"\\u" in data and _SURROGATE_ESCAPE.search(data) is not None:
        return None
    if text == "{}\n":
        return {}
    careful = _LONG_DIGITS in screen
    loads = orjson.loads
    line_match = _LINE.match
    root: dict[str, Any] = {}
    stack: list[Any] = [root]
    indents = [0]
    cur: Any = root
    cur_indent = 0
    pending: str | None = None
    lines = text.split("\n")
    lines.pop()
    for line in lines:
        m = line_match(line)
        if m is None:
            return None
        spaces, leaf, key, quoted, value_text = m.groups()
        indent = len(spaces)
        if pending is not None:  # the line after `key:` opens the nested block
            if indent != cur_indent + 2 or len(stack) >= MAX_DEPTH:
                return None
            new: Any = {} if leaf is None else []
            cur[pending] = new
            pending = None
            stack.append(new)
            indents.append(indent)
            cur = new
            cur_indent = indent
        elif indent != cur_indent:
            while indent < cur_indent:
                stack.pop()
                indents.pop()
                cur = stack[-1]
                cur_indent = indents[-1]
            if indent != cur_indent:
                return None
        if leaf is None:  # a `key: value` or `key:` line
            if type(cur) is not dict:
                return None
            if key is None:
                if len(quoted) > MAX_KEY_CHARS:
                    return None
                key = loads(quoted)
            elif key in _SPECIAL_KEYS:
                return None
            if key in cur:
                return None
            if value_text is None:
                pending = key
                continue
            leaf = value_text
        elif type(cur) is not list:
            return None
        value = _careful(leaf) if careful or "{" in leaf else loads(leaf)
        kind = type(value)
        if (kind is list or kind is dict) and (
            len(stack) + leaf.count("[") + leaf.count("{") > MAX_DEPTH
            and len(stack) + _depth(value) > MAX_DEPTH
        ):
            return None
        if type(cur) is list:
            cur.append(value)
        else:
            cur[key] = value
    if pending is not None:
        return None
    return root
