"""A local OpenAI-compatible chat completions server for tests (stdlib only).

    with FakeOpenAI() as server:
        server.script(Reply(status=429, headers={"Retry-After": "1"}), Reply())
        provider = OpenAIProvider(LlmConfig(base_url=server.base_url, ...), env)

It listens on 127.0.0.1 (a free port), answers `POST <any prefix>/chat/completions`, and
records every request it received (`server.requests`). Each request takes the next scripted
`Reply`; when the script is empty it answers with a minimal valid instance of the schema the
request carried (in `response_format`, or embedded in the system message in JSON mode).

`FakeOpenAI(dialect="llama.cpp")` answers as llama-cpp-python's server (0.3.x) does: a
`json_schema` response format is an HTTP 500 whose body says `Input should be 'text' or
'json_object'`; `{"type": "json_object", "schema": ...}` is answered by that schema (its
grammar); and with `raw_newlines=True` the strings it writes hold raw newlines, as that
grammar lets through.

An optional `responder(request_json)` writes the answers that carry no scripted content (the
default `Reply()` included) instead: it returns the message content, or a whole `Reply` (to set
the status or the usage too), or None for the minimal valid instance. It runs on the server's
threads; an exception in it becomes a 500 answer naming it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. `body` (bytes or a JSON value) wins over `content`.

    With neither, the answer is the default echo of a valid object (with `finish_reason`,
    `refusal` and `usage` as given).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | dict[str, Any] | list[Any] | None = None
    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    usage: tuple[int, int] | None = (11, 7)
    delay_s: float = 0.0
    hang: bool = False
    """Never answer (until the server stops)."""
    omit_length: bool = False
    """Send no Content-Length: the body ends when the connection closes."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def response_format(self) -> dict[str, Any] | None:
        rf = self.body.get("response_format")
        return rf if isinstance(rf, dict) else None


def completion_body(
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
    model: str = "fake-model",
    usage: tuple[int, int] | None = (11, 7),
) -> dict[str, Any]:
    """A `chat.completion` object with one choice."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "finish_reason": finish_reason,
        }],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": usage[0] + usage[1]}
    return body


def minimal_instance(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The smallest value valid for a JSON schema: strings "x", lists [], booleans true..."""
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        return minimal_instance(root.get("$defs", {}).get(name, {}), root)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            if any(o.get("type") == "null" for o in options):
                return None
            return minimal_instance(options[0], root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        return {name: minimal_instance(sub, root)
                for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        if isinstance(schema.get("prefixItems"), list):  # a grammar spells each item out
            return [minimal_instance(item, root) for item in schema["prefixItems"]]
        items = schema.get("items", {})
        return [minimal_instance(items, root) for _ in range(int(schema.get("minItems", 0)))]
    return {"string": "x", "integer": 0, "number": 0, "boolean": True}.get(str(kind))


def schema_in_text(text: str) -> dict[str, Any] | None:
    """The first JSON object in a text that looks like a JSON schema (JSON mode prompts)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict) and ("properties" in value or "$defs" in value):
            return value
        start = text.find("{", start + 1)
    return None


Responder = Callable[[dict[str, Any]], str | Reply | None]
"""Answers one request (its JSON body): the content, a whole Reply, or None for the default."""


class FakeOpenAI:
    """The fake server; a context manager that starts and stops it."""

    def __init__(
        self,
        *,
        json_schema_supported: bool = True,
        json_object_supported: bool = True,
        max_tokens_supported: bool = True,
        responder: Responder | None = None,
        dialect: str = "openai",
        raw_newlines: bool = False,
    ) -> None:
        self.responder = responder
        self.dialect = dialect
        self.raw_newlines = raw_newlines
        self.responder_errors: list[str] = []
        self.json_schema_supported = json_schema_supported
        self.json_object_supported = json_object_supported
        self.max_tokens_supported = max_tokens_supported
        self.requests: list[Received] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                fake._send(self, 404, {}, b'{"error": {"message": "not found"}}')

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting -------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    # serving ---------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {}
        received = Received(h.path, {k.lower(): v for k, v in h.headers.items()},
                            body if isinstance(body, dict) else {}, time.monotonic())
        with self._lock:
            self.requests.append(received)
        if not h.path.rstrip("/").endswith("/chat/completions"):
            self._send(h, 404, {}, b'{"error": {"message": "unknown path"}}')
            return
        if self.dialect == "llama.cpp" and (received.response_format or {}).get(
                "type") not in (None, "text", "json_object"):
            detail = ("[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
                      "'msg': \"Input should be 'text' or 'json_object'\", 'input': "
                      f"'{(received.response_format or {}).get('type')}'}}]")
            self._send(h, 500, {}, json.dumps({"error": {
                "message": detail, "type": "internal_server_error"}}).encode())
            return
        rejected = self._rejection(received)
        if rejected is not None:
            self._send(h, 400, {}, json.dumps(rejected).encode())
            return
        with self._lock:
            reply = self._queue.popleft() if self._queue else Reply()
        if (self.responder is not None and reply.body is None and reply.content is None
                and reply.refusal is None and 200 <= reply.status < 300):
            try:
                answer = self.responder(received.body)
            except Exception as exc:  # a broken responder is a test bug: make it loud
                message = f"responder failed: {type(exc).__name__}: {exc}"
                with self._lock:
                    self.responder_errors.append(message)
                self._send(h, 500, {}, json.dumps({"error": {"message": message}}).encode())
                return
            if isinstance(answer, Reply):
                reply = answer
            elif answer is not None:
                reply = Reply(status=reply.status, headers=reply.headers, content=answer,
                              finish_reason=reply.finish_reason, usage=reply.usage,
                              delay_s=reply.delay_s)
        if reply.hang:
            self._stopping.wait()
            return
        if reply.delay_s and self._stopping.wait(reply.delay_s):
            return
        if isinstance(reply.body, bytes):
            data = reply.body
        elif reply.body is not None:
            data = json.dumps(reply.body).encode()
        else:
            content = reply.content
            if content is None and reply.refusal is None:
                content = json.dumps(minimal_instance(self._schema_of(received) or {}))
                if self.raw_newlines:  # what a grammar lets into strings: raw control chars
                    content = content.replace('"x"', '"x\n\ty"')
            data = json.dumps(completion_body(
                content, finish_reason=reply.finish_reason, refusal=reply.refusal,
                model=str(received.body.get("model", "fake-model")), usage=reply.usage,
            )).encode()
        self._send(h, reply.status, reply.headers, data, omit_length=reply.omit_length)

    def _rejection(self, received: Received) -> dict[str, Any] | None:
        rf = received.response_format or {}
        if rf.get("type") == "json_schema" and not self.json_schema_supported:
            return {"error": {"message": "response_format type 'json_schema' is not supported",
                              "type": "invalid_request_error", "param": "response_format"}}
        if rf.get("type") == "json_object" and not self.json_object_supported:
            return {"error": {"message": "response_format type 'json_object' is not supported",
                              "type": "invalid_request_error", "param": "response_format"}}
        if "max_tokens" in received.body and not self.max_tokens_supported:
            return {"error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this "
                           "model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error", "param": "max_tokens"}}
        return None

    @staticmethod
    def _schema_of(received: Received) -> dict[str, Any] | None:
        rf = received.response_format or {}
        if rf.get("type") == "json_schema":
            schema = rf.get("json_schema", {}).get("schema")
            if isinstance(schema, dict):
                return schema
        if rf.get("type") == "json_object" and isinstance(rf.get("schema"), dict):
            return dict(rf["schema"])
        for m in received.messages:
            if m.get("role") == "system" and isinstance(m.get("content"), str):
                found = schema_in_text(m["content"])
                if found is not None:
                    return found
        return None

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        data: bytes,
        *,
        omit_length: bool = False,
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            if not omit_length:
                h.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                h.send_header(name, value)
            h.end_headers()
            view = memoryview(data)
            for i in range(0, len(view), 1 << 16):
                h.wfile.write(view[i: i + (1 << 16)])
            h.wfile.flush()
        except OSError:
            pass  # the client gave up (timeout, or it stopped reading a huge body)
