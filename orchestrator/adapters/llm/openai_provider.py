"""The OpenAI-compatible provider: chat completions with structured outputs in the server's
own dialect.

Works with OpenAI, Azure OpenAI (the `/openai/v1/` base URL), Ollama, vLLM, llama.cpp's
servers, LM Studio, OpenRouter and any other server that speaks
`POST {base_url}/chat/completions`.

This is the only module that imports `openai`, and it does so lazily (in the constructor):
importing the client costs more than half a second, which commands that need no model must not
pay. Transport retries are the client's own (`max_retries`, honouring `Retry-After`); every
attempt is still seen, logged and budgeted by `AttemptTransport`. Re-asks (an answer that is
not valid JSON, off-schema, truncated, refused) and the fallback between structured-output
modes are done here.

The API key is read from the environment only, and never reaches an error message, a transcript
or a `Usage`: every text stored or raised is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from orchestrator.adapters.llm.openai_answer import (
    MAX_ANSWER_CHARS,
    Answer,
    Fault,
    error_body_text,
    one_line,
    parse_body,
    read_body,
    validation_reason,
)
from orchestrator.adapters.llm.openai_attempts import (
    AttemptTransport,
    CallLedger,
    http_library,
    retry_after_s,
    status_text,
)
from orchestrator.adapters.llm.openai_dialect import (
    MODES,
    Mode,
    ModeCache,
    next_mode,
    parse_answer,
    refuses_a_format,
    refuses_mode,
    response_format,
    schema_instructions,
)
from orchestrator.adapters.llm.openai_schema import narrow, strict_schema
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

__all__ = ["OpenAIProvider", "ProviderCallError", "retry_after_s", "strict_schema"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"
"""The placeholder key sent to servers that need none (loopback base URL, `api_key_env: none`)."""

BACKOFF_CAP_S = 30.0
REASK_ECHO_CHARS = 16_000
"""A rejected answer up to this size is sent back (as the assistant turn) when re-asking."""


class ProviderCallError(ProviderError):
    """A ProviderError that also carries what the failed call consumed (for budgets and the
    alert) and its transcript (every attempt, committed beside the alert)."""

    def __init__(self, message: str, usage: Usage | None = None,
                 transcript: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.usage = usage
        self.transcript = transcript


# --------------------------------------------------------------------------------------------
# Small helpers


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


Budgets = Callable[[str], Any]
"""project -> its `Budget` (or None): reserved before each HTTP attempt, settled after."""


class OpenAIProvider:
    """`Provider` over any OpenAI-compatible chat completions endpoint.

    `max_depth` cuts recursive output schemas (the config's decomposition depth);
    `mode_cache` is where the structured-output mode settled per server and model is kept;
    `sleep` and `backoff_s` pace our own retries of broken 2xx bodies. One instance is safe
    to share between threads.
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
        max_depth: int | None = None,
        mode_cache: Path | None = None,
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
        self._max_depth = max_depth
        self._cache = ModeCache(mode_cache)
        self._modes: dict[str, Mode] = self._cache.read() if config.structured_output == "auto" \
            else {}
        self._settled: set[str] = set(self._modes)
        """Server and model pairs whose mode answered (or was read from the cache)."""
        self._probes: dict[str, threading.Lock] = {}
        self._cache_written = False
        self._token_param = "max_tokens"
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}
        self._budgets: Budgets | None = None

        import openai  # lazy: ~0.6 s, paid only by commands that call a model

        self._openai = openai
        try:
            self._transport = AttemptTransport(http_library(openai), config.timeout_s,
                                               refuses_a_format)
            self._client = openai.OpenAI(
                api_key=key or NO_KEY,
                base_url=self.base_url,
                organization=env.get("OPENAI_ORG_ID") or None,
                project=env.get("OPENAI_PROJECT_ID") or None,
                timeout=config.timeout_s,
                max_retries=config.max_retries,
                http_client=openai.DefaultHttpxClient(transport=cast(Any, self._transport),
                                                      timeout=config.timeout_s),
            )
        except Exception as exc:  # never let a client error escape
            raise ProviderError(
                f"openai: cannot build the client for {self._where}: "
                f"{self._clean(type(exc).__name__ + ': ' + str(exc))}") from None

    def attach_budgets(self, budgets: Budgets) -> None:
        """Reserve in the project's budget before every HTTP attempt (retries and re-asks
        included), settle with what it used after."""
        self._budgets = budgets

    @property
    def mode(self) -> Mode:
        """The structured-output mode in use for the default model."""
        return self.mode_for(self.config.model)

    def mode_for(self, model: str) -> Mode:
        configured = self.config.structured_output
        if configured != "auto":
            return configured
        with self._lock:
            return self._modes.get(self._mode_key(model), MODES[0])

    def _mode_key(self, model: str) -> str:
        return f"{self._where} {model}"

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self._client.close()

    # ----------------------------------------------------------------------------------------

    def _clean(self, text: str, limit: int = 300) -> str:
        """One line, capped, scrubbed of the key."""
        out = one_line(str(scrub(text, self._secrets)), limit)
        return str(scrub(out, self._secrets))

    def _schema(self, output_model: type[BaseModel], meta: CallMeta, mode: Mode
                ) -> dict[str, Any]:
        """The output model's schema, narrowed to the call's choices and sequences; spelled
        out item by item for every mode but strict json_schema (which lacks `prefixItems`)."""
        with self._lock:
            cached = self._schemas.get(output_model)
        if cached is None:
            cached = strict_schema(output_model, self._max_depth)
            with self._lock:
                self._schemas[output_model] = cached
        if meta.choices or meta.sequences:
            return narrow(cached, meta.choices, meta.sequences,
                          positional=mode != "json_schema")
        return cached

    def _ledger(self, project: str, model: str) -> CallLedger:
        budget = self._budgets(project) if self._budgets is not None else None
        if budget is None:
            return CallLedger()
        price = self.config.prices.get(model)
        max_out = self.config.max_output_tokens

        def reserve(prompt_estimate: int) -> object:
            return budget.reserve(prompt_estimate, max_out, price)

        def settle(reservation: object, prompt: int, completion: int) -> None:
            budget.record(Usage(prompt_tokens=prompt, completion_tokens=completion,
                                cost_usd=self._cost(model, prompt, completion)), reservation)

        return CallLedger(reserve=reserve, settle=settle)

    def _cost(self, model: str, prompt: int, completion: int) -> float:
        price = self.config.prices.get(model)
        if price is None:
            return 0.0
        return round((prompt * price.prompt + completion * price.completion) / 1_000_000, 8)

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        model = self.config.model_for(role)
        ledger = self._ledger(meta.project, model)
        with self._probing(model), self._transport.recording(ledger):
            return self._complete(role, messages, output_model, meta, model, ledger)

    @contextlib.contextmanager
    def _probing(self, model: str) -> Iterator[None]:
        """The first call to a server and model probes its mode alone; calls started meanwhile
        wait for it, then go straight to what it found."""
        key = self._mode_key(model)
        if self.config.structured_output != "auto":
            yield
            return
        with self._lock:
            lock = None if key in self._settled else self._probes.setdefault(key, threading.Lock())
        if lock is None:
            yield
            return
        lock.acquire()
        with self._lock:
            settled = key in self._settled
        if settled:
            lock.release()
            yield
            return
        try:
            yield
        finally:
            with self._lock:
                self._settled.add(key)
            lock.release()

    def _complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta,
        model: str, ledger: CallLedger,
    ) -> Completion[T]:
        cfg = self.config
        started = time.monotonic()
        name = schema_name(output_model)
        key = prompt_hash(model, messages, name)
        base = message_dicts(messages)
        extra: list[dict[str, str]] = []
        body_retries = 0
        reasks = 0
        streak_from = 0  # the first attempt since the last answer: faults in a row
        last_text: str | None = None
        who = f"(role {role}, model {model})"
        mode = self.mode_for(model)

        def usage() -> Usage:
            prompt, completion, calls, estimated = ledger.totals()
            return Usage(model=model, prompt_tokens=prompt, completion_tokens=completion,
                         cost_usd=self._cost(model, prompt, completion),
                         latency_ms=int((time.monotonic() - started) * 1000),
                         calls=calls, prompt_hash=key, estimated_tokens=estimated)

        def transcript(output: Any, error: str = "") -> dict[str, Any]:
            record = {
                "version": TRANSCRIPT_VERSION, "prompt_hash": key, "role": role,
                "model": model, "schema": name, "response_format": mode, "messages": base,
                "response": last_text if last_text is None or len(last_text) <= REASK_ECHO_CHARS
                else last_text[:REASK_ECHO_CHARS] + "…",
                "output": output, "usage": usage().model_dump(mode="json"),
                "attempts": ledger.attempts, "prompt_version": meta.prompt_version,
            }
            if error:
                record["error"] = error
            return dict(scrub(record, self._secrets))

        def fail(message: str) -> ProviderCallError:
            text = self._clean(message, 500)
            return ProviderCallError(text, usage(), transcript(None, text))

        while True:
            mode = self.mode_for(model)
            with self._lock:
                token_param = self._token_param
            schema = self._schema(output_model, meta, mode)
            sent = base if mode == "json_schema" else schema_instructions(base, schema, name)
            outcome = self._call(model, sent + extra, name, schema, mode, token_param, ledger)

            if isinstance(outcome, Fault):
                if ledger.refused is not None:
                    refused = ledger.refused
                    refused.usage = usage()  # type: ignore[attr-defined]
                    refused.transcript = transcript(None, str(refused))  # type: ignore[attr-defined]
                    raise refused
                if self._maybe_fall_back(outcome, model, mode, token_param):
                    if ledger.attempts:
                        ledger.attempts[-1]["error"] += f" (falling back from {mode})"
                    streak_from = len(ledger.attempts)
                    continue
                if outcome.in_body and outcome.retryable and body_retries < cfg.max_retries:
                    body_retries += 1
                    self._sleep(self._delay(body_retries - 1))
                    continue
                retries = max(0, len(ledger.attempts) - streak_from - 1)
                detail = f": {outcome.body_text}" if outcome.body_text else ""
                if outcome.retryable:
                    times = "retry" if retries == 1 else "retries"
                    hint = ""
                    if outcome.reason.startswith("timeout"):
                        hint = (f"; llm.max_output_tokens {cfg.max_output_tokens} may not fit "
                                f"in llm.timeout_s {cfg.timeout_s:g} at this server's speed")
                    raise fail(f"openai: {outcome.reason} after {retries} {times} at "
                               f"{self._where} {who}{hint}{detail}")
                raise fail(f"openai: {outcome.reason} at {self._where} {who}{detail}")

            streak_from = len(ledger.attempts)
            last_text = outcome.text
            output, reason = self._check(outcome, output_model)
            if output is not None:
                if outcome.text and any(s in outcome.text for s in self._secrets):
                    output = output_model.model_validate(
                        scrub(output.model_dump(mode="json"), self._secrets))
                if cfg.structured_output == "auto":
                    self._remember(model, mode)
                final = usage()
                return Completion(output=output, usage=final,
                                  transcript=transcript(output.model_dump(mode="json")))

            if ledger.attempts:
                ledger.attempts[-1]["error"] = f"answer rejected: {reason}"
            if reasks >= cfg.max_reasks:
                raise fail(f"openai: {role} answer from {model} rejected after {reasks} "
                           f"re-asks: {reason}")
            reasks += 1
            extra += self._reask_messages(outcome, reason)

    # ----------------------------------------------------------------------------------------

    def _maybe_fall_back(self, fault: Fault, model: str, mode: Mode, token_param: str) -> bool:
        """Adapt to what the server refused: the response format (then the next mode), the
        token knob. Another thread may have adapted already: then just send again."""
        if fault.status is None or fault.in_body:
            return False
        body = fault.body_text.lower()
        with self._lock:
            if self._token_param != token_param:
                return True
            if (fault.status in (400, 422) and "max_tokens" in body
                    and "max_completion_tokens" in body and token_param == "max_tokens"):
                self._token_param = "max_completion_tokens"
                return True
            if self.config.structured_output != "auto":
                return False
            current = self._modes.get(self._mode_key(model), MODES[0])
            if current != mode:
                return True
            following = next_mode(mode)
            if following is None or not refuses_mode(mode, fault.status, fault.body_text):
                return False
            self._modes[self._mode_key(model)] = following
        return True

    def _remember(self, model: str, mode: Mode) -> None:
        """The mode that answered, kept in the clone (written only when it changes)."""
        key = self._mode_key(model)
        with self._lock:
            known = self._modes.get(key)
            self._modes[key] = mode
            self._settled.add(key)
        if known != mode or not self._cache_written:
            self._cache.remember(key, mode)
            self._cache_written = True

    def _delay(self, retries: int) -> float:
        step = min(BACKOFF_CAP_S, self._backoff_s * (2 ** retries))
        return step * (0.5 + 0.5 * self._rng.random())

    def _check(self, answer: Answer, output_model: type[T]) -> tuple[T | None, str]:
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
            return parse_answer(text, output_model), ""
        except ValidationError as exc:
            return None, self._clean(validation_reason(exc), 2000)

    def _reask_messages(self, answer: Answer, reason: str) -> list[dict[str, str]]:
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
        ledger: CallLedger,
    ) -> Fault | Answer:
        """One client call (the client retries transport faults itself). Maps every client
        exception; reads at most MAX_BODY_BYTES; settles the answering attempt's usage."""
        openai = self._openai
        cfg = self.config
        kwargs: dict[str, Any] = {"model": model, "messages": messages,
                                  token_param: cfg.max_output_tokens}
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        fmt = response_format(mode, name, schema)
        if fmt is not None:
            kwargs["response_format"] = fmt
        timeout = f"timeout ({cfg.timeout_s:g}s)"
        try:
            with self._client.chat.completions.with_streaming_response.create(**kwargs) as resp:
                body = read_body(resp, cfg.timeout_s, self._clean)
        except openai.APITimeoutError:
            return Fault(None, timeout, True)
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            return Fault(None, self._clean(f"connection error: {type(cause).__name__}: "
                                            f"{cause}", 200), True)
        except openai.APIStatusError as exc:
            status = int(exc.status_code)
            text = ""
            try:
                text = exc.response.text
            except Exception:  # the body may be unreadable
                text = str(exc.message)
            return Fault(status, status_text(status),
                          status in (408, 409, 429) or status >= 500,
                          self._clean(error_body_text(exc.body, text), 2000))
        except openai.OpenAIError as exc:
            return Fault(None, self._clean(f"client error: {type(exc).__name__}: {exc}", 200),
                          False)
        if isinstance(body, Fault):
            if body.reason == "timeout":
                body.reason = timeout
            ledger.close_open(None, None, body.reason)
            return body
        if isinstance(body, Answer):
            ledger.close_open(None, None, "answer too large", body.too_large)
            return body
        outcome, prompt_tokens, completion_tokens = parse_body(body, self._clean)
        answer_chars = len(outcome.text or "") if isinstance(outcome, Answer) else len(body)
        ledger.close_open(prompt_tokens, completion_tokens,
                          outcome.reason if isinstance(outcome, Fault) else "", answer_chars)
        return outcome
