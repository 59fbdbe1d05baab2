"""The OpenAI-compatible provider: chat completions with strict structured outputs.

Works with OpenAI, Azure OpenAI (the `/openai/v1/` base URL), Ollama, vLLM, LM Studio,
OpenRouter and any other server that speaks `POST {base_url}/chat/completions`.

This is the only module that imports `openai`, and it does so lazily (in the constructor):
importing the client costs more than half a second, which commands that need no model must not
pay. The client is built with `max_retries=0`: retries, backoff, `Retry-After` and re-asks are
done here, so they are bounded, reported and recorded in the transcript.

The API key is read from the environment only, and never reaches an error message, a transcript
or a `Usage`: every text stored or raised is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from orchestrator.adapters.llm.transcripts import (
    TRANSCRIPT_VERSION,
    message_dicts,
    prompt_hash,
    schema_name,
    scrub,
)
from orchestrator.core.config import LlmConfig
from orchestrator.core.events import Usage
from orchestrator.core.provider import CallMeta, Completion, Message
from orchestrator.errors import ProviderError

T = TypeVar("T", bound=BaseModel)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"
"""The placeholder key sent to servers that need none (loopback base URL, `api_key_env: none`)."""

MAX_ANSWER_CHARS = 1_000_000
"""Longer answers are rejected (and re-asked), never validated nor stored."""
MAX_BODY_BYTES = 4 * MAX_ANSWER_CHARS
"""The response body is read at most this far (JSON escaping can quadruple an answer)."""
RETRY_AFTER_CAP_S = 60.0
BACKOFF_CAP_S = 30.0
RETRYABLE_STATUS = frozenset({408, 409, 429})
REASK_ECHO_CHARS = 16_000
"""A rejected answer up to this size is sent back (as the assistant turn) when re-asking."""

Mode = Literal["json_schema", "json_object", "prompt"]


class ProviderCallError(ProviderError):
    """A ProviderError that also carries the usage the failed call consumed (for budgets)."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


# --------------------------------------------------------------------------------------------
# Strict JSON schema


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The pydantic model's JSON schema, made acceptable to `strict: true` structured outputs.

    Every object lists all its properties as required and has `additionalProperties: false`;
    `$defs`/`$ref` are kept (recursive models work); titles and defaults are dropped;
    `Optional[X]` stays an `anyOf` with `{"type": "null"}`. A `$ref` with sibling keywords
    (pydantic puts a field's description next to it) is inlined once, the siblings kept; a
    recursive reference is never inlined (its siblings are dropped instead).
    """
    raw = model.model_json_schema()
    defs: dict[str, Any] = raw.pop("$defs", {}) or {}

    def resolve(ref: str) -> dict[str, Any] | None:
        prefix = "#/$defs/"
        if not ref.startswith(prefix):
            return None
        target = defs.get(ref[len(prefix):])
        return target if isinstance(target, dict) else None

    def walk(node: Any, inlining: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [walk(item, inlining) for item in node]
        if not isinstance(node, dict):
            return node
        node = {k: v for k, v in node.items() if k not in ("title", "default", "examples")}
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            node.pop("allOf")
            node = {**all_of[0], **node}
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) > 1:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            target = resolve(ref)
            if target is None or ref in inlining:
                return {"$ref": ref}
            return walk({**target, **siblings}, inlining | {ref})
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(s, inlining) for name, s in value.items()}
            elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "not"):
                out[key] = walk(value, inlining)
            else:
                out[key] = value
        if out.get("type") == "object" or "properties" in out:
            out.setdefault("type", "object")
            out.setdefault("properties", {})
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    root_inlining: frozenset[str] = frozenset()
    root_ref = raw.get("$ref")
    if isinstance(root_ref, str):
        target = resolve(root_ref)
        if target is not None:
            raw = {**target, **{k: v for k, v in raw.items() if k != "$ref"}}
            root_inlining = frozenset({root_ref})
    schema: dict[str, Any] = walk(raw, root_inlining)
    if defs:
        schema["$defs"] = {
            name: walk(d, frozenset({f"#/$defs/{name}"})) for name, d in defs.items()}
    return schema


# --------------------------------------------------------------------------------------------
# Small helpers


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on this machine: localhost, 127.0.0.0/8, ::1, 0.0.0.0."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def redact_url(url: str) -> str:
    """The URL without user info or query (either could hold a credential)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid base_url>"
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def retry_after_s(headers: Mapping[str, str] | None, now: datetime | None = None) -> float | None:
    """The server's requested wait: `retry-after-ms`, else `Retry-After` (seconds or HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _error_body_text(body: Any, text: str) -> str:
    """The server's error message: `error.message` of a JSON body, else the raw text."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(err, str):
            return err
        try:
            return json.dumps(body)[:2000]
        except (TypeError, ValueError):
            pass
    return text[:2000]


def _strip_fences(text: str) -> str:
    """`json ... ` fences removed, for JSON-mode servers whose models wrap their answer."""
    s = text.strip()
    if s.startswith("```"):
        first_nl = s.find("\n")
        if first_nl != -1 and s.endswith("```"):
            return s[first_nl + 1: -3].strip()
    return text


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0].get("type") == "json_invalid":
        return f"not valid JSON: {one_line(str(errors[0].get('msg', '')), 200)}"
    parts = []
    for err in errors[:8]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', '')}")
    more = f" (+{len(errors) - 8} more)" if len(errors) > 8 else ""
    return "does not match the schema: " + "; ".join(parts) + more


# --------------------------------------------------------------------------------------------
# One HTTP call's outcome


@dataclass
class _Fault:
    """The call produced no answer: an HTTP error, a timeout, a broken connection or body."""

    status: int | None
    reason: str
    retryable: bool
    retry_after: float | None = None
    body_text: str = ""


@dataclass
class _Answer:
    text: str | None
    finish_reason: str
    refusal: str
    too_large: int = 0
    """The body or answer size when it passed the cap (text is then None)."""


@dataclass
class _CallState:
    attempts: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


class OpenAIProvider:
    """`Provider` over any OpenAI-compatible chat completions endpoint.

    `sleep` and `backoff_s` (the first backoff step) are injectable for tests; the rest comes
    from `LlmConfig`. One instance is safe to share between threads.
    """

    name = "openai"

    def __init__(
        self,
        config: LlmConfig,
        env: Mapping[str, str],
        *,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.base_url = (config.base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
        self._where = redact_url(self.base_url)
        key_env = config.api_key_env.strip()
        key = ""
        if key_env.lower() not in ("", "none"):
            key = env.get(key_env, "").strip()
            if not key and not is_loopback_url(self.base_url):
                raise ProviderError(f"{key_env} is not set; export it or set llm.api_key_env")
        self._secrets = [key] if key else []
        self._sleep = sleep
        self._backoff_s = backoff_s
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._mode: Mode = "json_object" if config.structured_output == "json_object" \
            else "json_schema"
        self._token_param = "max_tokens"
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}

        import openai  # lazy: ~0.6 s, paid only by commands that call a model

        self._openai = openai
        try:
            self._client = openai.OpenAI(
                api_key=key or NO_KEY,
                base_url=self.base_url,
                organization=env.get("OPENAI_ORG_ID") or None,
                project=env.get("OPENAI_PROJECT_ID") or None,
                timeout=config.timeout_s,
                max_retries=0,
            )
        except Exception as exc:  # never let a client error escape
            raise ProviderError(
                f"openai: cannot build the client for {self._where}: "
                f"{self._clean(type(exc).__name__ + ': ' + str(exc))}") from None

    @property
    def mode(self) -> Mode:
        """The structured-output mode in use (it only ever falls back, never returns)."""
        with self._lock:
            return self._mode

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self._client.close()

    # ----------------------------------------------------------------------------------------

    def _clean(self, text: str, limit: int = 300) -> str:
        """One line, capped, scrubbed of the key."""
        out = one_line(str(scrub(text, self._secrets)), limit)
        return str(scrub(out, self._secrets))

    def _schema(self, output_model: type[BaseModel]) -> dict[str, Any]:
        with self._lock:
            cached = self._schemas.get(output_model)
        if cached is None:
            cached = strict_schema(output_model)
            with self._lock:
                self._schemas[output_model] = cached
        return cached

    @staticmethod
    def _with_schema_instructions(
        messages: list[dict[str, str]], schema: dict[str, Any], name: str
    ) -> list[dict[str, str]]:
        """JSON mode: the schema goes into the (first) system message."""
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

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        cfg = self.config
        started = time.monotonic()
        model = cfg.model_for(role)
        name = schema_name(output_model)
        schema = self._schema(output_model)
        key = prompt_hash(model, messages, name)
        base = message_dicts(messages)
        extra: list[dict[str, str]] = []
        state = _CallState()
        retries = 0
        reasks = 0
        who = f"(role {role}, model {model})"

        def usage() -> Usage:
            price = cfg.prices.get(model)
            cost = 0.0
            if price is not None:
                cost = (state.prompt_tokens * price.prompt
                        + state.completion_tokens * price.completion) / 1_000_000
            return Usage(
                model=model,
                prompt_tokens=state.prompt_tokens,
                completion_tokens=state.completion_tokens,
                cost_usd=round(cost, 8),
                latency_ms=int((time.monotonic() - started) * 1000),
                calls=state.calls,
                prompt_hash=key,
            )

        def fail(message: str) -> ProviderCallError:
            return ProviderCallError(self._clean(message, 500), usage())

        while True:
            with self._lock:
                mode, token_param = self._mode, self._token_param
            sent = base if mode == "json_schema" else \
                self._with_schema_instructions(base, schema, name)
            outcome = self._call(model, sent + extra, name, schema, mode, token_param, state)

            if isinstance(outcome, _Fault):
                attempt: dict[str, Any] = {"status": outcome.status, "error": outcome.reason}
                state.attempts.append(attempt)
                if self._maybe_fall_back(outcome, mode, token_param):
                    attempt["error"] += f" (falling back from {mode})"
                    continue
                if outcome.retryable and retries < cfg.max_retries:
                    delay = self._delay(outcome.retry_after, retries)
                    attempt["wait_s"] = round(delay, 3)
                    retries += 1
                    self._sleep(delay)
                    continue
                if outcome.retryable:
                    times = "retry" if retries == 1 else "retries"
                    raise fail(f"openai: {outcome.reason} after {retries} {times} at "
                               f"{self._where} {who}")
                detail = f": {outcome.body_text}" if outcome.body_text else ""
                raise fail(f"openai: {outcome.reason} at {self._where} {who}{detail}")

            output, reason = self._check(outcome, output_model)
            if output is not None:
                if outcome.text and any(s in outcome.text for s in self._secrets):
                    output = output_model.model_validate(
                        scrub(output.model_dump(mode="json"), self._secrets))
                state.attempts.append({"status": 200, "error": ""})
                final = usage()
                transcript = {
                    "version": TRANSCRIPT_VERSION,
                    "prompt_hash": key,
                    "role": role,
                    "model": model,
                    "schema": name,
                    "response_format": mode,
                    "messages": base,
                    "response": outcome.text,
                    "output": output.model_dump(mode="json"),
                    "usage": final.model_dump(mode="json"),
                    "attempts": state.attempts,
                    "prompt_version": meta.prompt_version,
                }
                return Completion(
                    output=output, usage=final, transcript=scrub(transcript, self._secrets))

            state.attempts.append({"status": 200, "error": f"answer rejected: {reason}"})
            if reasks >= cfg.max_reasks:
                raise fail(f"openai: {role} answer from {model} rejected after {reasks} "
                           f"re-asks: {reason}")
            reasks += 1
            extra += self._reask_messages(outcome, reason)

    # ----------------------------------------------------------------------------------------

    def _maybe_fall_back(self, fault: _Fault, mode: Mode, token_param: str) -> bool:
        """Adapt to what the server rejected with a 400: the response format, the token knob."""
        if fault.status not in (400, 422):
            return False
        body = fault.body_text.lower()
        with self._lock:
            if self._mode != mode or self._token_param != token_param:
                return True  # another thread already adapted: just send again
            if ("max_tokens" in body and "max_completion_tokens" in body
                    and token_param == "max_tokens"):
                self._token_param = "max_completion_tokens"
                return True
            if self.config.structured_output != "auto":
                return False
            if mode == "json_schema" and ("response_format" in body or "json_schema" in body):
                self._mode = "json_object"
                return True
            if mode == "json_object" and ("response_format" in body or "json_object" in body):
                self._mode = "prompt"
                return True
        return False

    def _delay(self, retry_after: float | None, retries: int) -> float:
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP_S)
        step = min(BACKOFF_CAP_S, self._backoff_s * (2 ** retries))
        return step * (0.5 + 0.5 * self._rng.random())

    def _check(
        self, answer: _Answer, output_model: type[T]
    ) -> tuple[T | None, str]:
        if answer.too_large:
            return None, (f"answer too large ({answer.too_large} bytes; the limit is "
                          f"{MAX_ANSWER_CHARS})")
        if answer.refusal:
            return None, f"the model refused: {self._clean(answer.refusal, 200)}"
        if answer.finish_reason == "content_filter":
            return None, "the answer was stopped by the content filter"
        if answer.finish_reason == "length":
            return None, (f"answer truncated at the output token limit "
                          f"({self.config.max_output_tokens} tokens)")
        text = answer.text
        if text is None or not text.strip():
            return None, "empty answer"
        try:
            return output_model.model_validate_json(_strip_fences(text)), ""
        except ValidationError as exc:
            return None, self._clean(_validation_reason(exc), 2000)

    def _reask_messages(self, answer: _Answer, reason: str) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        if answer.text and len(answer.text) <= REASK_ECHO_CHARS:
            out.append({"role": "assistant", "content": str(scrub(answer.text, self._secrets))})
        hint = ""
        if answer.finish_reason == "length" or answer.too_large:
            hint = " Keep it shorter so that it fits."
        out.append({"role": "user", "content": (
            f"Your previous answer was rejected: {reason}.{hint} Answer again with exactly one "
            "JSON object that matches the schema, and nothing else.")})
        return out

    def _call(
        self,
        model: str,
        messages: list[dict[str, str]],
        name: str,
        schema: dict[str, Any],
        mode: Mode,
        token_param: str,
        state: _CallState,
    ) -> _Fault | _Answer:
        """One HTTP call. Maps every client exception; reads at most MAX_BODY_BYTES."""
        openai = self._openai
        cfg = self.config
        kwargs: dict[str, Any] = {"model": model, "messages": messages,
                                  token_param: cfg.max_output_tokens}
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        if mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True}}
        elif mode == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        state.calls += 1
        timeout = f"timeout ({cfg.timeout_s:g}s)"
        try:
            with self._client.chat.completions.with_streaming_response.create(**kwargs) as resp:
                body = self._read_body(resp)
        except openai.APITimeoutError:
            return _Fault(None, timeout, True)
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            return _Fault(None, self._clean(f"connection error: {type(cause).__name__}: "
                                            f"{cause}", 200), True)
        except openai.APIStatusError as exc:
            status = int(exc.status_code)
            text = ""
            try:
                text = exc.response.text
            except Exception:  # the body may be unreadable
                text = str(exc.message)
            return _Fault(
                status, _status_text(status),
                status in RETRYABLE_STATUS or status >= 500,
                retry_after_s(exc.response.headers),
                self._clean(_error_body_text(exc.body, text), 2000))
        except openai.OpenAIError as exc:
            return _Fault(None, self._clean(f"client error: {type(exc).__name__}: {exc}", 200),
                          False)
        if isinstance(body, _Fault | _Answer):
            if isinstance(body, _Fault) and body.reason == "timeout":
                body.reason = timeout
            return body
        return self._parse_body(body, state)

    def _read_body(self, resp: Any) -> bytes | _Fault | _Answer:
        length = resp.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            resp.close()
            return _Answer(None, "", "", too_large=int(length))
        deadline = time.monotonic() + self.config.timeout_s
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    resp.close()
                    return _Answer(None, "", "", too_large=size)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    resp.close()
                    return _Fault(None, "timeout", True)
        except Exception as exc:  # transport errors, whichever httpx
            if "timeout" in type(exc).__name__.lower():
                return _Fault(None, "timeout", True)
            return _Fault(None, self._clean(
                f"connection error while reading: {type(exc).__name__}: {exc}", 200), True)
        return b"".join(chunks)

    def _parse_body(self, body: bytes, state: _CallState) -> _Fault | _Answer:
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _Fault(200, "malformed response body (not JSON)", True)
        if not isinstance(data, dict):
            return _Fault(200, "malformed response body (not an object)", True)
        usage = data.get("usage")
        if isinstance(usage, dict):
            for attr, key in (("prompt_tokens", "prompt_tokens"),
                              ("completion_tokens", "completion_tokens")):
                value = usage.get(key)
                if isinstance(value, int) and value >= 0:
                    setattr(state, attr, getattr(state, attr) + value)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            err = data.get("error")
            if err:
                return _Fault(200, self._clean(
                    f"server error in body: {_error_body_text(data, '')}", 200), True)
            return _Fault(200, "malformed response body (no choices)", True)
        choice = choices[0]
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        assert isinstance(message, dict)
        content = message.get("content")
        if isinstance(content, list):  # content parts, from some servers
            content = "".join(
                p.get("text", "") for p in content if isinstance(p, dict)
                and isinstance(p.get("text"), str))
        if content is not None and not isinstance(content, str):
            content = None
        if content is not None and len(content) > MAX_ANSWER_CHARS:
            return _Answer(None, str(choice.get("finish_reason") or ""), "",
                           too_large=len(content.encode("utf-8")))
        refusal = message.get("refusal")
        return _Answer(
            content,
            str(choice.get("finish_reason") or ""),
            refusal if isinstance(refusal, str) else "",
        )
