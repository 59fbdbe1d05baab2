"""All YAML in orch: event documents (canonical fast path, hardened safe path) and configs."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import Reader
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.scanner import Scanner

from orchestrator.adapters.yaml_fast import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    dump_document,
    fast_load,
)
from orchestrator.errors import EventFileError

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "dump_config_text",
    "dump_document",
    "load_config_text",
    "load_document",
]

_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG = "tag:yaml.org,2002:"
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"
_NO_KEY = object()  # marks a mapping that waits for its next key


class _TooDeep(YAMLError):
    """Raised by the scanner at the first flow collection nested past MAX_DEPTH."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _BoundedScanner(Scanner):
    """Stops at flow depth MAX_DEPTH: `[[[[...` otherwise costs quadratic simple-key checks."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep(self.reader.line + 1)
        super().fetch_flow_collection_start(TokenClass, to_push)


class _Quoted(str):
    """A config string ruamel would write raw in a style that reads back differently."""


class _ConfigRepresenter(SafeRepresenter):
    """Writes `_Quoted` strings double-quoted, where NEL and U+2028 become escapes."""


_ConfigRepresenter.add_representer(
    _Quoted,
    lambda rep, data: rep.represent_scalar("tag:yaml.org,2002:str", str(data), style='"'),
)
# Line breaks YAML folds (NEL, U+2028/9), BOM, and characters YAML does not call printable.
_NEEDS_QUOTES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _new_yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.Scanner = _BoundedScanner
    return yaml


def load_document(data: bytes, path: str) -> dict[str, Any]:
    """Read one event file: the canonical fast path, else the hardened safe path."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise EventFileError(path, _too_big(len(data)), None)
    result = fast_load(data)
    if result is not None:
        return result
    return _safe_load(_decode(data, path), path, empty_ok=False)


def load_config_text(text: str, path: str) -> dict[str, Any]:
    """Safely load a hand-written YAML mapping (a config file); an empty file gives {}."""
    if len(text) > MAX_DOCUMENT_BYTES:  # cheap bound first: characters <= bytes
        raise EventFileError(path, _too_big(len(text)), None)
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise EventFileError(path, "not valid UTF-8 (lone surrogate)", line) from None
    if size > MAX_DOCUMENT_BYTES:
        raise EventFileError(path, _too_big(size), None)
    return _safe_load(text, path, empty_ok=True)


def dump_config_text(data: Mapping[str, Any]) -> str:
    """Readable block-style YAML for a config file; loads back with load_config_text."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a config must be a mapping, got {type(data).__name__}")
    plain = _plain(data, 1)
    if not plain:
        return "{}\n"
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _ConfigRepresenter
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    yaml.width = 4096
    yaml.representer.sort_base_mapping_type_on_output = False
    out = io.StringIO()
    yaml.dump(plain, out)
    return out.getvalue()


def _plain(value: Any, depth: int) -> Any:
    """A plain dict/list/scalar copy of a JSON-like value, or ValueError."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise ValueError(f"string holds a lone surrogate: {value[:40]!r}")
        text = str.__str__(value)
        return _Quoted(text) if _NEEDS_QUOTES.search(text) else text
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the float {value!r}")
        return float(value)
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("mapping keys must be strings")
        return {_plain(k, depth): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    raise ValueError(f"cannot write a {type(value).__name__} to YAML: {value!r:.60}")


def _too_big(size: int) -> str:
    return f"document is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit"


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        reason = f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        raise EventFileError(path, reason, line) from None


def _safe_load(text: str, path: str, *, empty_ok: bool) -> dict[str, Any]:
    """ruamel.yaml safe parse, built from the event stream with every hostile feature refused."""
    bad = Reader.NON_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        char = bad.group()
        what = "a NUL byte" if char == "\0" else f"the non-printable character U+{ord(char):04X}"
        raise EventFileError(path, f"contains {what} (binary data?)", line)
    try:
        root = _build(_new_yaml(), text, path)
    except EventFileError:
        raise
    except _TooDeep as exc:
        raise EventFileError(path, _TOO_DEEP, exc.line) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        at = mark.line + 1 if mark is not None else None
        raise EventFileError(path, f"invalid YAML: {reason}", at) from None
    except YAMLError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise EventFileError(path, f"invalid YAML: {first}", None) from None
    except (RecursionError, MemoryError):
        raise EventFileError(path, "document too deeply nested or too large", None) from None
    except Exception as exc:  # anything else from ruamel: a reason, never a traceback
        reason = f"unreadable YAML: {type(exc).__name__}: {str(exc)[:200]}"
        raise EventFileError(path, reason, None) from None
    if isinstance(root, dict):
        return root
    if empty_ok:  # no document, or an empty one (`---`)
        return {}
    if root is _NO_KEY:
        raise EventFileError(path, "empty document", None)
    raise EventFileError(path, "top level must be a mapping, not null", 1)


def _kind(value: Any) -> str:
    names: dict[type, str] = {list: "list", dict: "mapping", str: "string"}
    name = names.get(type(value), type(value).__name__)
    return "null" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _build(yaml: YAML, text: str, path: str) -> Any:
    """Fold ruamel's event stream into plain values, without recursion."""
    root: Any = _NO_KEY
    stack: list[Any] = []  # open collections
    keys: list[Any] = []  # per open collection: the pending key (mappings) or None
    documents = 0
    events: Iterator[Any] = yaml.parse(text)
    for event in events:
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise EventFileError(path, "more than one YAML document", line)
            if event.version or event.tags:
                raise EventFileError(path, "YAML directives (%YAML, %TAG) are not allowed", line)
            continue
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            keys.pop()
            continue
        if isinstance(event, AliasEvent):
            raise EventFileError(path, f"aliases are not allowed (*{event.anchor})", line)
        if not isinstance(event, ScalarEvent | MappingStartEvent | SequenceStartEvent):
            continue  # stream start/end, document end
        if event.anchor is not None:
            raise EventFileError(path, f"anchors are not allowed (&{event.anchor})", line)
        if event.tag is not None:
            raise EventFileError(path, f"tags are not allowed ({str(event.tag)[:80]})", line)
        value: Any
        if isinstance(event, ScalarEvent):
            value = _scalar(yaml, event, path, line)
        else:
            if len(stack) >= MAX_DEPTH:
                raise EventFileError(path, _TOO_DEEP, line)
            value = {} if isinstance(event, MappingStartEvent) else []
        if not stack:
            if value is not None and not isinstance(value, dict):
                raise EventFileError(path, f"top level must be a mapping, not {_kind(value)}", line)
            root = value
        elif type(stack[-1]) is list:
            stack[-1].append(value)
        elif keys[-1] is _NO_KEY:
            if type(value) is not str:
                raise EventFileError(
                    path, f"mapping keys must be strings, not {_kind(value)}", line
                )
            if value in stack[-1]:
                raise EventFileError(path, f"duplicate key {value!r}", line)
            keys[-1] = value
        else:
            stack[-1][keys[-1]] = value
            keys[-1] = _NO_KEY
        if not isinstance(event, ScalarEvent):
            stack.append(value)
            keys.append(_NO_KEY if isinstance(value, dict) else None)
    return root


def _scalar(yaml: YAML, event: Any, path: str, line: int | None) -> Any:
    """A scalar exactly as ruamel's safe constructor makes it, except timestamps stay text."""
    text: str = event.value
    if not event.implicit[0]:  # quoted or block scalar: a string
        if event.style == '"' and _SURROGATE.search(text):
            raise EventFileError(path, "string holds a lone surrogate (\\uD800-\\uDFFF)", line)
        return text
    tag = str(yaml.resolver.resolve(ScalarNode, text, event.implicit))
    kind = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    if kind in ("str", "timestamp"):
        return text
    if kind == "null":
        return None
    node = ScalarNode(tag, text, event.start_mark)
    constructor = yaml.constructor
    if kind == "bool":
        return constructor.construct_yaml_bool(node)
    if kind == "int":
        return constructor.construct_yaml_int(node)
    if kind == "float":
        number = constructor.construct_yaml_float(node)
        if not math.isfinite(number):
            raise EventFileError(path, f"non-finite float {text!r} is not allowed", line)
        return number
    if kind == "merge":
        raise EventFileError(path, "merge keys (<<) are not allowed", line)
    raise EventFileError(path, f"unsupported plain scalar {text!r} ({tag}); quote it", line)
