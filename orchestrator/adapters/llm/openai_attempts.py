"""Every HTTP attempt the openai client makes, seen as it makes it: the per-attempt log, the
budget reserved before each one, and the usage each one cost.

The client retries by itself (`max_retries`, honouring `Retry-After`); an httpx transport
under it is the one place that sees each of those attempts. The HTTP library is whichever the
installed openai client is built on (`httpx`, or `httpx2` in its later releases): it is handed
in, never imported here. `AttemptTransport` wraps the real
transport (nothing is patched): before an attempt it reserves that attempt's worst case in the
call's budget, after it it records status, reason and usage in the call's `CallLedger`. A
refused reservation becomes a local `402` that the client does not retry, so no request is
sent past the budget. An error body is read (capped) so its message is kept, and a server's
"this response_format is not supported" (llama.cpp answers it with a 500) is marked
`x-should-retry: false`: it is not transient, the provider falls back instead.

What an attempt cost: the server's count where the answer gives one; for an attempt that
produced no usable answer (a 5xx, a timeout, a broken connection) an estimate of its prompt,
marked as such; nothing for a request the server refused before any work (4xx, unsupported).
"""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

from orchestrator.errors import ProviderError

CHARS_PER_TOKEN = 4
ERROR_BODY_BYTES = 64 * 1024
RETRY_AFTER_HONOURED_S = 60.0
"""The openai client honours a server's Retry-After up to this long (else its own backoff)."""
RETRYABLE = frozenset({408, 409, 429})


def status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def estimate_tokens(chars: int) -> int:
    return chars // CHARS_PER_TOKEN + 1


Reserve = Callable[[int], object]
"""Reserve an attempt's worst case given its prompt estimate; ProviderError when refused."""
Settle = Callable[[object, int, int], None]
"""Record what an attempt used (prompt, completion tokens) against its reservation."""


@dataclass
class CallLedger:
    """One provider call's HTTP attempts (as transcript entries) and its budget hooks."""

    reserve: Reserve | None = None
    settle: Settle | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    refused: ProviderError | None = None
    _open: tuple[object, int, int] | None = None
    """(reservation, prompt estimate, attempt index) of a 2xx whose body the provider reads."""

    def begin(self, prompt_estimate: int) -> object:
        return self.reserve(prompt_estimate) if self.reserve is not None else None

    def record(self, reservation: object, entry: dict[str, Any], prompt_tokens: int = 0,
               completion_tokens: int = 0, estimated: bool = False) -> None:
        entry.update(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
        if estimated:
            entry["estimated"] = True
        self.attempts.append(entry)
        if self.settle is not None:
            self.settle(reservation, prompt_tokens, completion_tokens)

    def opened(self, reservation: object, prompt_estimate: int) -> None:
        self.attempts.append({"status": 200, "error": "", "prompt_tokens": 0,
                              "completion_tokens": 0})
        self._open = (reservation, prompt_estimate, len(self.attempts) - 1)

    def close_open(self, prompt_tokens: int | None, completion_tokens: int | None,
                   error: str = "", answer_chars: int = 0) -> None:
        """The answer of the open attempt was read: its usage (None: the server gave none,
        estimated from the sizes) and, when it could not be used, why."""
        if self._open is None:
            return
        reservation, estimate, index = self._open
        self._open = None
        entry = self.attempts[index]
        estimated = prompt_tokens is None or completion_tokens is None
        entry["prompt_tokens"] = estimate if prompt_tokens is None else prompt_tokens
        entry["completion_tokens"] = (estimate_tokens(answer_chars) if completion_tokens is None
                                      else completion_tokens)
        if estimated:
            entry["estimated"] = True
        if error:
            entry["error"] = error
        if self.settle is not None:
            self.settle(reservation, entry["prompt_tokens"], entry["completion_tokens"])

    def totals(self) -> tuple[int, int, int, int]:
        """(prompt, completion, attempts, estimated tokens) over every attempt so far."""
        prompt = sum(int(a.get("prompt_tokens", 0)) for a in self.attempts)
        completion = sum(int(a.get("completion_tokens", 0)) for a in self.attempts)
        estimated = sum(int(a.get("prompt_tokens", 0)) + int(a.get("completion_tokens", 0))
                        for a in self.attempts if a.get("estimated"))
        return prompt, completion, len(self.attempts), estimated


def http_library(openai: Any) -> Any:
    """The httpx module the openai client is built on (its default client derives from it)."""
    import importlib

    for klass in openai.DefaultHttpxClient.__mro__:
        top = klass.__module__.partition(".")[0]
        if top.startswith("httpx"):
            return importlib.import_module(top)
    return importlib.import_module("httpx")


class AttemptTransport:
    """An httpx transport (by its protocol: `handle_request`, `close`) that logs and budgets
    each attempt of the thread's current call, around the library's own transport."""

    def __init__(self, http: Any, timeout_s: float,
                 unsupported: Callable[[int, str], bool]) -> None:
        self._http = http
        self._inner = http.HTTPTransport()
        self._timeout_s = timeout_s
        self._unsupported = unsupported
        self._local = threading.local()

    @contextlib.contextmanager
    def recording(self, ledger: CallLedger) -> Iterator[CallLedger]:
        """Attempts made by this thread inside the block go to `ledger`."""
        self._local.ledger = ledger
        try:
            yield ledger
        finally:
            self._local.ledger = None

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> AttemptTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_request(self, request: Any) -> Any:
        ledger: CallLedger | None = getattr(self._local, "ledger", None)
        if ledger is None:
            return self._inner.handle_request(request)
        estimate = estimate_tokens(len(request.content))
        try:
            reservation = ledger.begin(estimate)
        except ProviderError as exc:
            ledger.refused = exc
            return self._http.Response(402, headers={"x-should-retry": "false"},
                                  json={"error": {"message": str(exc)}}, request=request)
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            timeout = isinstance(exc, self._http.TimeoutException)
            reason = (f"timeout ({self._timeout_s:g}s)" if timeout
                      else f"connection error: {type(exc).__name__}")
            ledger.record(reservation, {"status": None, "error": reason}, estimate, 0,
                          estimated=True)
            raise
        status = response.status_code
        if 200 <= status < 300:
            ledger.opened(reservation, estimate)
            return response
        raw = _read_capped(response)
        text = _decoded(raw, response.headers.get("content-encoding", ""))
        unsupported = self._unsupported(status, text)
        entry: dict[str, Any] = {"status": status, "error": status_text(status)}
        wait = _honoured_wait(response.headers) if _retryable(status) and not unsupported \
            else None
        if wait is not None:
            entry["wait_s"] = wait
        # A server error may have spent the prompt; a refusal or an unsupported format did not.
        spent = status >= 500 and not unsupported
        ledger.record(reservation, entry, estimate if spent else 0, 0, estimated=spent)
        # The body goes on decoded (and perhaps cut): its length and encoding headers go.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in (
            "content-length", "transfer-encoding", "content-encoding")]
        if unsupported:
            headers.append(("x-should-retry", "false"))
        return self._http.Response(status, headers=headers, content=text.encode("utf-8"),
                                   request=request)


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


def _retryable(status: int) -> bool:
    return status in RETRYABLE or status >= 500


def _honoured_wait(headers: Mapping[str, str]) -> float | None:
    """The wait the client will honour: the server's Retry-After(-ms) up to 60 s."""
    wait = retry_after_s(headers)
    if wait is not None and 0 < wait <= RETRY_AFTER_HONOURED_S:
        return round(wait, 3)
    return None


def _read_capped(response: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= ERROR_BODY_BYTES:
                break
    except Exception:  # a broken error body still leaves its status
        pass
    finally:
        with contextlib.suppress(Exception):
            response.close()
    return b"".join(chunks)[:ERROR_BODY_BYTES]


def _decoded(raw: bytes, encoding: str) -> str:
    if encoding.lower() in ("gzip", "deflate"):
        with contextlib.suppress(zlib.error):
            raw = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(raw, ERROR_BODY_BYTES * 4)
    return raw.decode("utf-8", errors="replace")
