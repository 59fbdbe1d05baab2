"""Reading one chat completion: its body (capped in size and time), the answer and the usage
the server counted in it, or the fault that left no answer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

MAX_ANSWER_CHARS = 1_000_000
"""Longer answers are rejected (and re-asked), never validated nor stored."""
MAX_BODY_BYTES = 4 * MAX_ANSWER_CHARS
"""The response body is read at most this far (JSON escaping can quadruple an answer)."""

Clean = Callable[[str, int], str]
"""One line, capped, scrubbed of secrets: every text kept from a server goes through it."""


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_body_text(body: Any, text: str) -> str:
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


def validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0].get("type") == "json_invalid":
        return f"not valid JSON: {one_line(str(errors[0].get('msg', '')), 200)}"
    parts = []
    for err in errors[:8]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', '')}")
    more = f" (+{len(errors) - 8} more)" if len(errors) > 8 else ""
    return "does not match the schema: " + "; ".join(parts) + more


@dataclass
class Fault:
    """The call produced no answer: an HTTP error, a timeout, a broken connection or body."""

    status: int | None
    reason: str
    retryable: bool
    body_text: str = ""
    in_body: bool = False
    """Seen by us in a 2xx body (the client could not retry it): we retry it ourselves."""


@dataclass
class Answer:
    text: str | None
    finish_reason: str
    refusal: str
    too_large: int = 0
    """The body or answer size when it passed the cap (text is then None)."""


def read_body(resp: Any, timeout_s: float, clean: Clean) -> bytes | Fault | Answer:
    """The body, read at most MAX_BODY_BYTES far and within the timeout; else why not."""
    length = resp.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        resp.close()
        return Answer(None, "", "", too_large=int(length))
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in resp.iter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                resp.close()
                return Answer(None, "", "", too_large=size)
            chunks.append(chunk)
            if time.monotonic() > deadline:
                resp.close()
                return Fault(None, "timeout", True, in_body=True)
    except Exception as exc:  # transport errors, whichever httpx
        if "timeout" in type(exc).__name__.lower():
            return Fault(None, "timeout", True, in_body=True)
        return Fault(None, clean(
            f"connection error while reading: {type(exc).__name__}: {exc}", 200), True,
            in_body=True)
    return b"".join(chunks)


def parse_body(body: bytes, clean: Clean) -> tuple[Fault | Answer, int | None, int | None]:
    """The answer, and the usage the server counted (None where it gave none)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Fault(200, "malformed response body (not JSON)", True, in_body=True), \
            None, None
    if not isinstance(data, dict):
        return Fault(200, "malformed response body (not an object)", True,
                      in_body=True), None, None
    prompt_tokens = completion_tokens = None
    usage = data.get("usage")
    if isinstance(usage, dict):
        p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
        prompt_tokens = p if isinstance(p, int) and p >= 0 else None
        completion_tokens = c if isinstance(c, int) and c >= 0 else None
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = data.get("error")
        if err:
            return Fault(200, clean(
                f"server error in body: {error_body_text(data, '')}", 200), True,
                in_body=True), prompt_tokens, completion_tokens
        return Fault(200, "malformed response body (no choices)", True, in_body=True), \
            prompt_tokens, completion_tokens
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
    finish = str(choice.get("finish_reason") or "")
    if content is not None and len(content) > MAX_ANSWER_CHARS:
        return Answer(None, finish, "", too_large=len(content.encode("utf-8"))), \
            prompt_tokens, completion_tokens
    refusal = message.get("refusal")
    return Answer(content, finish, refusal if isinstance(refusal, str) else ""), \
        prompt_tokens, completion_tokens
