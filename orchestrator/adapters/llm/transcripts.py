"""Transcripts of model calls (plain JSON dicts) and the provider that replays them.

A transcript is what one `complete()` call asked and got: the prompt hash (the replay key), the
role, the model, the messages, the final raw answer, the validated output, the usage and the
attempts. It never holds an API key or HTTP headers. `ReplayProvider` answers from recorded
transcripts, so a run can be re-played without a model and without a network.

This module must not import `openai`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.core.config import LlmConfig
from orchestrator.core.events import Usage
from orchestrator.core.provider import CallMeta, Completion, Message
from orchestrator.errors import ProviderError

T = TypeVar("T", bound=BaseModel)

TRANSCRIPT_VERSION = 1
MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024
"""Transcript files larger than this are skipped on load."""

REQUIRED_KEYS = ("prompt_hash", "role", "model", "output", "usage")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def message_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def schema_name(output_model: type[BaseModel]) -> str:
    """The schema name sent to the model (OpenAI allows [A-Za-z0-9_-]{1,64})."""
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in output_model.__name__)
    return (name or "Output")[:64]


def prompt_hash(model: str, messages: Sequence[Message], schema: str) -> str:
    """The replay key: sha256 of the canonical JSON of (model, messages, schema name)."""
    payload = canonical_json([model, message_dicts(messages), schema])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def scrub(value: Any, secrets: Iterable[str]) -> Any:
    """A copy of a JSON-like value with every occurrence of every secret replaced by `***`."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, "***")
        return value
    if isinstance(value, Mapping):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


def transcript_bytes(transcript: Mapping[str, Any]) -> bytes:
    """A transcript as a file: JSON, sorted keys, 2-space indent, UTF-8, trailing newline."""
    text = json.dumps(transcript, sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def transcript_filename(transcript: Mapping[str, Any], seq: int | None = None) -> str:
    """A file name for a transcript: `<seq>-<role>-<hash12>.json` (seq keeps replay order)."""
    role = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(transcript["role"]))
    stem = f"{role}-{str(transcript['prompt_hash'])[:12]}.json"
    return f"{seq:06d}-{stem}" if seq is not None else stem


def transcripts_dir(root: Path, project: str) -> Path:
    """Where a project's transcripts live: `<root>/.orchestrator/transcripts/<project>/`."""
    return root / ".orchestrator" / "transcripts" / project


def parse_transcript(data: bytes) -> dict[str, Any]:
    """One transcript from bytes; ValueError with a one-line reason when it is not one."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {_one_line(str(exc))}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in value]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(value["prompt_hash"], str) or len(value["prompt_hash"]) != 64:
        raise ValueError("prompt_hash is not a sha256 hex digest")
    if not isinstance(value["role"], str) or not isinstance(value["model"], str):
        raise ValueError("role and model must be strings")
    if not isinstance(value["usage"], dict):
        raise ValueError("usage is not an object")
    try:
        Usage.model_validate(value["usage"])
    except ValidationError as exc:
        raise ValueError(f"bad usage: {_one_line(str(exc))}") from None
    return value


def load_transcripts(directory: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The transcripts of a directory (`*.json`, by file name) and the files skipped, with why.

    A missing directory is an empty one. Broken files never raise: they come back as
    `(file name, reason)` in the second list.
    """
    loaded: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    if not directory.is_dir():
        return loaded, skipped
    for path in sorted(directory.glob("*.json")):
        try:
            if not path.is_file():
                skipped.append((path.name, "not a regular file"))
                continue
            size = path.stat().st_size
            if size > MAX_TRANSCRIPT_BYTES:
                skipped.append((path.name, f"too large ({size} bytes)"))
                continue
            loaded.append(parse_transcript(path.read_bytes()))
        except ValueError as exc:
            skipped.append((path.name, str(exc)))
        except OSError as exc:
            skipped.append((path.name, f"unreadable: {exc.strerror or exc}"))
    return loaded, skipped


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ReplayProvider:
    """Answers from recorded transcripts, keyed by prompt hash; never touches the network.

    The hash needs the model the recording asked. With `config`, the model is
    `config.model_for(role)`; without, every model recorded for that role is tried. When one
    prompt was recorded several times, the recordings are replayed in order and the last one
    repeats.
    """

    name = "replay"

    def __init__(
        self, transcripts: Iterable[Mapping[str, Any]], config: LlmConfig | None = None
    ) -> None:
        self._config = config
        self._by_hash: dict[str, list[dict[str, Any]]] = {}
        self._next: dict[str, int] = {}
        self._models: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        for t in transcripts:
            record = dict(t)
            self._by_hash.setdefault(str(record["prompt_hash"]), []).append(record)
            self._models.setdefault(str(record["role"]), set()).add(str(record["model"]))

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_hash.values())

    def _candidates(self, role: str) -> list[str]:
        if self._config is not None:
            return [self._config.model_for(role)]
        return sorted(self._models.get(role, set())) or [""]

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        name = schema_name(output_model)
        hashes = [prompt_hash(model, messages, name) for model in self._candidates(role)]
        with self._lock:
            key = next((h for h in hashes if h in self._by_hash), None)
            if key is None:
                raise ProviderError(
                    f"replay: no transcript for {role} prompt {hashes[0][:12]}; "
                    "record the run first")
            records = self._by_hash[key]
            index = self._next.get(key, 0)
            self._next[key] = min(index + 1, len(records) - 1)
            record = records[index]
        try:
            output = output_model.model_validate(record["output"])
            usage = Usage.model_validate(record["usage"])
        except ValidationError as exc:
            raise ProviderError(
                f"replay: recorded output for {role} prompt {key[:12]} does not validate as "
                f"{output_model.__name__}: {_one_line(str(exc), 200)}") from None
        return Completion(output=output, usage=usage, transcript=dict(record))
