"""OpenAIProvider with the real `openai` client over HTTP, against the local fake server.

Also: the strict schema, the budget guard and replay of recorded transcripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

try:
    from tests.support.fake_openai import FakeOpenAI, Reply
except ModuleNotFoundError:  # pytest run without the repository root on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.support.fake_openai import FakeOpenAI, Reply

from orchestrator.adapters.llm.openai_provider import (
    OpenAIProvider,
    ProviderCallError,
    retry_after_s,
    strict_schema,
)
from orchestrator.adapters.llm.transcripts import (
    ReplayProvider,
    load_transcripts,
    prompt_hash,
    transcript_bytes,
    transcript_filename,
)
from orchestrator.agents.outputs import BacklogOutput, DevOutput, ResultOut
from orchestrator.core.config import BudgetConfig, LlmConfig, Price
from orchestrator.core.events import Usage
from orchestrator.core.provider import CallMeta, Message
from orchestrator.errors import ProviderError
from orchestrator.runtime.budget import Budget, BudgetedProvider, BudgetExceeded

CANARY = "sk-canary-7f3a9c1e5b2d4e6f8a0b1c2d"
MODEL = "gpt-test"
META = CallMeta(project="p1", actor="dev.backend", kind="task", subject="T1",
                prompt_version="dev@1")
MESSAGES = [Message("system", "You are the Dev of squad backend."),
            Message("user", "Write app.py for T1.")]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def server() -> Any:
    with FakeOpenAI() as fake:
        yield fake


def make_config(base_url: str | None, **overrides: Any) -> LlmConfig:
    values: dict[str, Any] = {
        "provider": "openai", "base_url": base_url, "model": MODEL, "timeout_s": 5,
        "max_retries": 2, "max_reasks": 2,
        "prices": {MODEL: Price(prompt=1.0, completion=2.0)},
    }
    values.update(overrides)
    return LlmConfig(**values)


def make_provider(base_url: str | None, env: dict[str, str] | None = None,
                  **overrides: Any) -> OpenAIProvider:
    env = {"OPENAI_API_KEY": CANARY} if env is None else env
    return OpenAIProvider(make_config(base_url, **overrides), env, backoff_s=0.01)


def assert_no_canary(*things: Any) -> None:
    for thing in things:
        text = thing if isinstance(thing, str) else json.dumps(thing, default=str)
        assert CANARY not in text
        assert CANARY[8:] not in text


def user_texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


# --------------------------------------------------------------------------------------------
# The happy path, the schema, the key


def test_valid_structured_answer(server: FakeOpenAI) -> None:
    provider = make_provider(server.base_url)
    done = provider.complete("dev", MESSAGES, DevOutput, META)

    assert isinstance(done.output, DevOutput)
    assert done.output.blocker is None and done.output.result.response == "x"
    usage = done.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.calls) == (11, 7, 1)
    assert usage.model == MODEL
    assert usage.cost_usd == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)
    assert usage.prompt_hash == prompt_hash(MODEL, MESSAGES, "DevOutput")

    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {CANARY}"
    assert req.body["model"] == MODEL and req.body["max_tokens"] == 4096
    rf = req.response_format
    assert rf is not None and rf["type"] == "json_schema"
    assert rf["json_schema"]["name"] == "DevOutput" and rf["json_schema"]["strict"] is True
    assert req.messages == [{"role": "system", "content": MESSAGES[0].content},
                            {"role": "user", "content": MESSAGES[1].content}]

    t = done.transcript
    assert t is not None
    assert t["prompt_hash"] == usage.prompt_hash and t["role"] == "dev"
    assert t["model"] == MODEL and t["prompt_version"] == "dev@1"
    assert t["output"] == done.output.model_dump(mode="json")
    assert json.loads(t["response"]) == t["output"]
    assert t["usage"] == usage.model_dump(mode="json")
    assert t["attempts"] == [{"status": 200, "error": ""}]
    assert "headers" not in json.dumps(t).lower()
    assert_no_canary(t, usage.model_dump())
    json.dumps(t)  # JSON-serialisable


def test_strict_schema_recursive_optional_and_clean() -> None:
    schema = strict_schema(BacklogOutput)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["tasks", "dependency_requests", "notes"]
    planned = schema["$defs"]["PlannedTask"]
    assert planned["additionalProperties"] is False
    assert set(planned["required"]) == set(planned["properties"])
    assert planned["properties"]["subtasks"]["items"] == {"$ref": "#/$defs/PlannedTask"}

    dev = strict_schema(DevOutput)
    blocker = dev["properties"]["blocker"]
    assert {"type": "null"} in blocker["anyOf"]
    assert dev["properties"]["result"] == {"$ref": "#/$defs/ResultOut"}

    class Inner(BaseModel):
        a: int = 1

    class Outer(BaseModel):
        inner: Inner = Field(description="described: pydantic puts it next to the $ref")
        kids: list[Outer] = Field(description="recursive")

    outer = strict_schema(Outer)  # a recursive root: inlined at the root, $defs kept
    inner = outer["properties"]["inner"]
    assert inner["additionalProperties"] is False and inner["required"] == ["a"]
    assert inner["description"].startswith("described")
    assert outer["properties"]["kids"]["items"] == {"$ref": "#/$defs/Outer"}
    assert outer["$defs"]["Outer"]["required"] == ["inner", "kids"]

    def walk(node: Any) -> None:  # every schema node: clean and strict
        if isinstance(node, dict):
            assert "title" not in node and "default" not in node, node
            if "$ref" in node:
                assert len(node) == 1, node
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert node["required"] == list(node["properties"])
            for key, value in node.items():
                if key in ("properties", "$defs"):
                    for sub in value.values():
                        walk(sub)
                elif key in ("items", "anyOf"):
                    walk(value)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for each in (schema, dev, outer):
        walk(each)


def test_recursive_model_answer_validates(server: FakeOpenAI) -> None:
    done = make_provider(server.base_url).complete("pm", MESSAGES, BacklogOutput, META)
    assert done.output == BacklogOutput(tasks=[], dependency_requests=[], notes="x")


def test_missing_key_is_one_line_error() -> None:
    with pytest.raises(ProviderError) as info:
        make_provider(None, env={})
    assert str(info.value) == "OPENAI_API_KEY is not set; export it or set llm.api_key_env"
    with pytest.raises(ProviderError, match="^MY_KEY is not set; export it or set"):
        make_provider("https://example.invalid/v1", env={}, api_key_env="MY_KEY")


def test_keyless_local_server(server: FakeOpenAI) -> None:
    provider = make_provider(server.base_url, env={})  # loopback: no key needed
    provider.complete("dev", MESSAGES, ResultOut, META)
    assert server.requests[0].headers["authorization"] == "Bearer no-key"
    # `api_key_env: none`: no key needed wherever the server is
    make_provider("https://llm.internal.example/v1", env={}, api_key_env="none")


def test_key_never_in_errors_or_transcripts(server: FakeOpenAI) -> None:
    server.script(Reply(status=401, body={"error": {
        "message": f"Incorrect API key provided: {CANARY}.", "type": "invalid_request_error"}}))
    provider = make_provider(server.base_url)
    with pytest.raises(ProviderError) as info:
        provider.complete("dev", MESSAGES, ResultOut, META)
    message = str(info.value)
    assert "401 Unauthorized" in message and "\n" not in message
    assert_no_canary(message)
    assert len(server.requests) == 1  # no retry on 401

    # A model that echoes the key: the key is scrubbed from everything stored.
    leaked = json.dumps({"response": f"key={CANARY}", "additional_info": "", "suggestions": ""})
    server.script(Reply(content=leaked))
    done = provider.complete("dev", MESSAGES, ResultOut, META)
    assert_no_canary(done.transcript, done.usage.model_dump(), done.output.model_dump())
    assert done.output.response == "key=***"


def test_no_openai_import_at_module_import() -> None:
    code = ("import sys; import orchestrator.adapters.llm.openai_provider, "
            "orchestrator.adapters.llm.transcripts, orchestrator.runtime.budget; "
            "sys.exit(1 if 'openai' in sys.modules else 0)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --------------------------------------------------------------------------------------------
# Faults: retries, backoff, Retry-After, timeouts


def test_429_retry_after_is_honoured(server: FakeOpenAI) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "1"},
                        body={"error": {"message": "Rate limit reached"}}))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    first, second = server.requests
    assert 0.9 <= second.at - first.at < 3.0
    assert done.usage.calls == 2 and done.usage.prompt_tokens == 11  # no usage on the 429
    assert done.transcript is not None
    assert done.transcript["attempts"][0] == {"status": 429, "error": "429 Too Many Requests",
                                              "wait_s": 1.0}


def test_500_then_success(server: FakeOpenAI) -> None:
    server.script(Reply(status=500, body={"error": {"message": "boom"}}))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert done.usage.calls == 2 and len(server.requests) == 2


def test_429_exhausted_names_status_retries_and_url(server: FakeOpenAI) -> None:
    server.script(*[Reply(status=429, body={"error": {"message": "slow down"}})] * 4)
    with pytest.raises(ProviderCallError) as info:
        make_provider(server.base_url, max_retries=3).complete("dev", MESSAGES, ResultOut, META)
    message = str(info.value)
    assert message.startswith(
        f"openai: 429 Too Many Requests after 3 retries at {server.base_url}")
    assert "\n" not in message
    assert info.value.usage is not None and info.value.usage.calls == 4


def test_other_4xx_is_not_retried(server: FakeOpenAI) -> None:
    server.script(Reply(status=404, body={"error": {"message": "The model does not exist"}}))
    with pytest.raises(ProviderError, match="404 Not Found.*model does not exist"):
        make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert len(server.requests) == 1


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = format_datetime(now + timedelta(seconds=5), usegmt=True)
    assert retry_after_s({"retry-after": date}, now=now) == pytest.approx(5.0)
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


def test_hang_past_timeout_then_success(server: FakeOpenAI) -> None:
    server.script(Reply(hang=True))
    started = time.monotonic()
    done = make_provider(server.base_url, timeout_s=1).complete("dev", MESSAGES, ResultOut, META)
    assert 0.9 <= time.monotonic() - started < 4
    assert done.usage.calls == 2
    assert done.transcript is not None
    assert done.transcript["attempts"][0]["error"] == "timeout (1s)"


def test_hang_forever_fails_after_retries(server: FakeOpenAI) -> None:
    server.script(Reply(hang=True), Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(ProviderError) as info:
        make_provider(server.base_url, timeout_s=1, max_retries=1).complete(
            "dev", MESSAGES, ResultOut, META)
    assert time.monotonic() - started < 5
    assert str(info.value).startswith("openai: timeout (1s) after 1 retry at ")


def test_connection_refused_fails_after_retries() -> None:
    with FakeOpenAI() as fake:
        url = fake.base_url
    with pytest.raises(ProviderError, match="connection error.*after 1 retry at"):
        make_provider(url, max_retries=1).complete("dev", MESSAGES, ResultOut, META)


# --------------------------------------------------------------------------------------------
# Bad answers: re-asks


def test_truncated_answer_is_reasked(server: FakeOpenAI) -> None:
    server.script(Reply(content='{"response": "ab', finish_reason="length"))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert done.usage.calls == 2 and done.usage.prompt_tokens == 22
    second = server.requests[1].messages
    assert second[:2] == server.requests[0].messages
    assert "truncated" in user_texts(second[2:])


def test_always_truncated_fails_naming_role_model_reason(server: FakeOpenAI) -> None:
    server.script(*[Reply(content='{"response": "ab', finish_reason="length")] * 3)
    with pytest.raises(ProviderError) as info:
        make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    message = str(info.value)
    assert message.startswith(f"openai: dev answer from {MODEL} rejected after 2 re-asks: ")
    assert "truncated" in message and "\n" not in message
    assert len(server.requests) == 3


def test_schema_violation_is_reasked_with_the_error(server: FakeOpenAI) -> None:
    server.script(Reply(content='{"response": 1}'))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert done.output.response == "x"
    follow_up = server.requests[1].messages[2:]
    assert follow_up[0] == {"role": "assistant", "content": '{"response": 1}'}
    text = user_texts(follow_up)
    assert "additional_info" in text and "Field required" in text
    assert done.transcript is not None
    assert done.transcript["attempts"][0]["error"].startswith("answer rejected: does not match")


@pytest.mark.parametrize("bad", ["Sure! Here is the JSON you asked for.", ""])
def test_non_json_or_empty_is_reasked(server: FakeOpenAI, bad: str) -> None:
    server.script(Reply(content=bad))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert done.usage.calls == 2


def test_refusal_is_reasked(server: FakeOpenAI) -> None:
    server.script(Reply(refusal="I can't help with that."))
    make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert "refused" in user_texts(server.requests[1].messages)


@pytest.mark.parametrize("omit_length", [False, True])
def test_huge_answer_is_rejected_without_storing_it(server: FakeOpenAI, omit_length: bool) -> None:
    huge = json.dumps({"response": "y" * 10_000_000, "additional_info": "", "suggestions": ""})
    server.script(Reply(content=huge, omit_length=omit_length))
    done = make_provider(server.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert done.output.response == "x"
    assert len(json.dumps(done.transcript)) < 10_000
    assert "too large" in done.transcript["attempts"][0]["error"]  # type: ignore[index]
    assert len(json.dumps(server.requests[1].messages)) < 10_000  # not echoed back

    server.script(Reply(content=huge, omit_length=omit_length))
    with pytest.raises(ProviderError) as info:
        make_provider(server.base_url, max_reasks=0).complete("dev", MESSAGES, ResultOut, META)
    assert "too large" in str(info.value) and len(str(info.value)) < 600


# --------------------------------------------------------------------------------------------
# Servers without json_schema


def test_json_mode_only_server_falls_back_and_remembers() -> None:
    with FakeOpenAI(json_schema_supported=False) as fake:
        provider = make_provider(fake.base_url)
        done = provider.complete("dev", MESSAGES, DevOutput, META)
        assert done.output.result.response == "x"
        first, second = fake.requests
        assert first.response_format and first.response_format["type"] == "json_schema"
        assert second.response_format == {"type": "json_object"}
        system = second.messages[0]["content"]
        assert system.startswith(MESSAGES[0].content) and '"additionalProperties":false' in system
        assert provider.mode == "json_object"
        assert done.usage.prompt_hash == prompt_hash(MODEL, MESSAGES, "DevOutput")

        provider.complete("dev", MESSAGES, DevOutput, META)
        assert len(fake.requests) == 3
        assert fake.requests[2].response_format == {"type": "json_object"}


def test_parallel_calls_share_one_provider() -> None:
    with FakeOpenAI(json_schema_supported=False) as fake:
        provider = make_provider(fake.base_url)
        results: list[Any] = []

        def call(i: int) -> None:
            messages = [Message("user", f"task {i}")]
            results.append(provider.complete("dev", messages, ResultOut, META))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6 and provider.mode == "json_object"
        assert len({r.usage.prompt_hash for r in results}) == 6


def test_no_response_format_server_falls_back_to_prompt_only() -> None:
    with FakeOpenAI(json_schema_supported=False, json_object_supported=False) as fake:
        provider = make_provider(fake.base_url)
        provider.complete("dev", MESSAGES, ResultOut, META)
        assert fake.requests[-1].response_format is None and provider.mode == "prompt"


def test_configured_json_object_and_forced_json_schema() -> None:
    with FakeOpenAI(json_schema_supported=False) as fake:
        make_provider(fake.base_url, structured_output="json_object").complete(
            "dev", MESSAGES, ResultOut, META)
        assert [r.response_format for r in fake.requests] == [{"type": "json_object"}]
        with pytest.raises(ProviderError, match="400 Bad Request.*json_schema"):
            make_provider(fake.base_url, structured_output="json_schema").complete(
                "dev", MESSAGES, ResultOut, META)


def test_max_completion_tokens_fallback() -> None:
    with FakeOpenAI(max_tokens_supported=False) as fake:
        make_provider(fake.base_url).complete("dev", MESSAGES, ResultOut, META)
        assert fake.requests[-1].body["max_completion_tokens"] == 4096
        assert "max_tokens" not in fake.requests[-1].body


def test_answer_in_code_fences_is_accepted_in_json_mode() -> None:
    fenced = '```json\n{"response": "r", "additional_info": "", "suggestions": ""}\n```'
    with FakeOpenAI() as fake:
        fake.script(Reply(content=fenced))
        done = make_provider(fake.base_url, structured_output="json_object").complete(
            "dev", MESSAGES, ResultOut, META)
        assert done.output.response == "r"


# --------------------------------------------------------------------------------------------
# Budget


def test_budget_reserve_refuses_past_the_limit_and_record_sums() -> None:
    budget = Budget.from_usage(
        BudgetConfig(max_tokens=10_000),
        [Usage(prompt_tokens=3000, completion_tokens=1000)], project="p1")
    assert budget.used_tokens == 4000
    r1 = budget.reserve(1000, 2000)
    with pytest.raises(BudgetExceeded, match="^budget: project p1 would pass .*max_tokens 10000"):
        budget.reserve(2000, 2000)  # 4000 used + 3000 in flight + 4000 > 10000
    budget.record(Usage(prompt_tokens=900, completion_tokens=100), r1)
    assert budget.used_tokens == 5000 and budget.pending_tokens == 0
    budget.reserve(2000, 2000)  # now 5000 + 4000 <= 10000
    budget.record(Usage(prompt_tokens=2000, completion_tokens=500))  # releases the oldest
    assert budget.used_tokens == 7500 and budget.pending_tokens == 0
    with pytest.raises(BudgetExceeded):
        budget.reserve(1000, 2000)
    assert isinstance(BudgetExceeded("x"), ProviderError)


def test_budget_cost_limit_and_threads() -> None:
    price = Price(prompt=10.0, completion=30.0)
    budget = Budget(BudgetConfig(max_cost_usd=1.0), used_cost_usd=0.9, price=price)
    with pytest.raises(BudgetExceeded, match="max_cost_usd"):
        budget.reserve(1000, 4000)  # 0.01 + 0.12 > 0.1 left
    budget.reserve(1000, 1000)

    shared = Budget(BudgetConfig(max_tokens=100_000))
    refused: list[int] = []

    def worker() -> None:
        for _ in range(50):
            try:
                r = shared.reserve(100, 900)
            except BudgetExceeded:
                refused.append(1)
                continue
            shared.record(Usage(prompt_tokens=100, completion_tokens=400), r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.used_tokens <= 100_000 and refused
    assert shared.used_tokens == 500 * (400 - len(refused))
    assert shared.pending_tokens == 0


def test_budgeted_provider_records_usage(server: FakeOpenAI) -> None:
    config = make_config(server.base_url, max_output_tokens=1000)
    budget = Budget(BudgetConfig(max_tokens=1500), project="p1")
    provider = BudgetedProvider(
        OpenAIProvider(config, {"OPENAI_API_KEY": CANARY}), lambda p: budget, config)
    provider.complete("dev", MESSAGES, ResultOut, META)
    assert budget.used_tokens == 18 and budget.pending_tokens == 0
    with pytest.raises(BudgetExceeded):  # 18 + prompt estimate + 1000 > 1500 on a big prompt
        provider.complete("dev", [Message("user", "z" * 4000)], ResultOut, META)
    assert len(server.requests) == 1  # the refused call was never made


# --------------------------------------------------------------------------------------------
# Replay


def test_replay_from_recorded_transcripts(tmp_path: Path) -> None:
    with FakeOpenAI() as fake:
        fake.script(Reply(content=json.dumps({"response": "recorded", "additional_info": "a",
                                              "suggestions": ""})))
        recorded = make_provider(fake.base_url).complete("dev", MESSAGES, ResultOut, META)
    assert recorded.transcript is not None
    folder = tmp_path / ".orchestrator" / "transcripts" / "p1"
    folder.mkdir(parents=True)
    (folder / transcript_filename(recorded.transcript, 1)).write_bytes(
        transcript_bytes(recorded.transcript))
    (folder / "broken.json").write_text("{not json")
    (folder / "partial.json").write_text('{"role": "dev"}')
    transcripts, skipped = load_transcripts(folder)
    assert len(transcripts) == 1
    assert dict(skipped).keys() == {"broken.json", "partial.json"}
    assert "missing" in dict(skipped)["partial.json"]

    replay = ReplayProvider(transcripts)  # the server is stopped: no network
    again = replay.complete("dev", MESSAGES, ResultOut, META)
    assert again.output == recorded.output and again.output.response == "recorded"
    assert again.usage == recorded.usage
    assert transcript_bytes(again.transcript or {}) == transcript_bytes(recorded.transcript)
    ReplayProvider(transcripts, make_config(None)).complete("dev", MESSAGES, ResultOut, META)

    other = [Message("user", "Something never asked.")]
    with pytest.raises(ProviderError) as info:
        replay.complete("dev", other, ResultOut, META)
    key = prompt_hash(MODEL, other, "ResultOut")[:12]
    assert str(info.value) == f"replay: no transcript for dev prompt {key}; record the run first"
    with pytest.raises(ProviderError, match="does not validate as DevOutput|no transcript"):
        replay.complete("dev", MESSAGES, DevOutput, META)
