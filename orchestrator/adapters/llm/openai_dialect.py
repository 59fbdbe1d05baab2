"""Each server's structured-output dialect: which `response_format` it takes, how its refusal of
one reads, the mode settled per server and model (kept in the clone), and reading answers
leniently where that is safe.

The modes, best first: strict `json_schema` (OpenAI, vLLM, recent llama.cpp); `json_object` with
the schema beside it (llama-cpp-python's server and vLLM enforce it by grammar); plain
`json_object` with the schema in the prompt; the prompt alone. In every mode but the first the
schema is also in the system message, so a server that ignores part of the request still shows
the model what to write.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

Mode = Literal["json_schema", "json_object_schema", "json_object", "prompt"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object_schema", "json_object", "prompt")
_NAMED: dict[str, tuple[str, ...]] = {
    "json_schema": ("response_format", "json_schema"),
    "json_object_schema": ("response_format", "json_object", "schema"),
    "json_object": ("response_format", "json_object"),
}
_NOT_A_FORMAT_REFUSAL = frozenset({401, 403, 404, 408, 409, 429})


def response_format(mode: Mode, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True}}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


def refuses_a_format(status: int, body: str) -> bool:
    """A 4xx, or a 500 (llama-cpp-python: "Input should be 'text' or 'json_object'"), whose
    body names the response format: the server does not take it, retrying will not help."""
    if not (400 <= status < 500 and status not in _NOT_A_FORMAT_REFUSAL or status == 500):
        return False
    text = body.lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object"))


def refuses_mode(mode: Mode, status: int, body: str) -> bool:
    """Whether this refusal is of `mode` in particular (then the next mode is tried)."""
    if mode == "prompt":
        return False
    if not (400 <= status < 500 and status not in _NOT_A_FORMAT_REFUSAL or status == 500):
        return False
    text = body.lower()
    return any(word in text for word in _NAMED[mode])


def next_mode(mode: Mode) -> Mode | None:
    index = MODES.index(mode)
    return MODES[index + 1] if index + 1 < len(MODES) else None


def schema_instructions(messages: list[dict[str, str]], schema: dict[str, Any],
                        name: str) -> list[dict[str, str]]:
    """The schema in the (first) system message, for every mode but strict json_schema."""
    note = (
        f"Answer with exactly one JSON object ({name}) and nothing else: no prose, no code "
        "fences. Every property is required; add no other property. The object must "
        "validate against this JSON schema:\n"
        + json.dumps(schema, separators=(",", ":"), ensure_ascii=False))
    out = [dict(m) for m in messages]
    for m in out:
        if m["role"] == "system":
            m["content"] = f"{m['content']}\n\n{note}"
            return out
    return [{"role": "system", "content": note}, *out]


def strip_fences(text: str) -> str:
    """```json ... ``` fences removed, for JSON-mode servers whose models wrap their answer."""
    s = text.strip()
    if s.startswith("```"):
        first_nl = s.find("\n")
        if first_nl != -1 and s.endswith("```"):
            return s[first_nl + 1: -3].strip()
    return text


def parse_answer(text: str, output_model: type[T]) -> T:
    """The answer validated strictly; read leniently first where that is safe: control
    characters (raw newlines, tabs) inside strings, which a grammar lets through and
    `json.loads(strict=False)` reads, are escaped before validation. ValidationError else."""
    candidate = strip_fences(text)
    try:
        return output_model.model_validate_json(candidate)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if not errors or errors[0].get("type") != "json_invalid":
            raise
        try:
            value = json.loads(candidate, strict=False)
        except json.JSONDecodeError:
            raise exc from None
        return output_model.model_validate_json(json.dumps(value, ensure_ascii=False))


class ModeCache:
    """The mode settled per server and model, in one small JSON file of the clone (never
    committed): the next run starts from what worked instead of probing again."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, Mode]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): v for k, v in data.items() if v in MODES}

    def remember(self, key: str, mode: Mode) -> None:
        """Atomic replace; a cache that cannot be written only means probing again."""
        if self.path is None:
            return
        with self._lock:
            data: dict[str, str] = dict(self.read())
            if data.get(key) == mode:
                return
            data[key] = mode
            with contextlib.suppress(OSError):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-mode-")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
