"""The openai provider against servers with their own dialect (llama.cpp's), with the real
client and a local server: the mode settled once and kept, lenient parsing, the cut schema,
and every HTTP attempt logged and budgeted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.llm.openai_provider import OpenAIProvider, strict_schema
from orchestrator.adapters.llm.openai_schema import narrow
from orchestrator.agents.outputs import BacklogOutput, DevOutput, ResultOut
from orchestrator.core.config import BudgetConfig, LlmConfig
from orchestrator.core.provider import CallMeta, Message
from orchestrator.errors import ProviderError
from orchestrator.runtime.budget import Budget, BudgetExceeded
from tests.support.fake_openai import FakeOpenAI, Reply

META = CallMeta(project="p1", actor="pm.backend", kind="plan_backlog", subject="backend")
MESSAGES = [Message("system", "You are the PM."), Message("user", "Plan the backlog.")]


def provider(url: str, tmp_path: Path | None = None, **overrides: Any) -> OpenAIProvider:
    values: dict[str, Any] = {"provider": "openai", "base_url": url, "model": "smol",
                              "timeout_s": 5, "max_retries": 2, "max_reasks": 2,
                              "api_key_env": "none"}
    values.update(overrides)
    cache = tmp_path / "structured-output.json" if tmp_path is not None else None
    return OpenAIProvider(LlmConfig(**values), {}, max_depth=1, mode_cache=cache,
                          backoff_s=0.01)


def test_llama_cpp_settles_on_json_object_with_schema_once_and_keeps_it(tmp_path: Path) -> None:
    with FakeOpenAI(dialect="llama.cpp", raw_newlines=True) as fake:
        first = provider(fake.base_url, tmp_path)
        done = first.complete("dev", MESSAGES, ResultOut, META)
        rejected, accepted = fake.requests
        assert rejected.response_format and rejected.response_format["type"] == "json_schema"
        assert accepted.response_format == {"type": "json_object",
                                            "schema": strict_schema(ResultOut)}
        # The grammar let raw newlines into the strings: read, then validated strictly.
        assert done.output.response == "x\n\ty"
        assert first.mode == "json_object_schema"
        assert done.usage.calls == 2 and done.usage.prompt_tokens == 11  # the 500 cost nothing
        attempts = (done.transcript or {})["attempts"]
        assert attempts[0]["status"] == 500 and "falling back from json_schema" in \
            attempts[0]["error"]
        cached = json.loads((tmp_path / "structured-output.json").read_text())
        assert cached == {f"{fake.base_url} smol": "json_object_schema"}

        again = provider(fake.base_url, tmp_path)  # a later run: no probing again
        again.complete("dev", MESSAGES, ResultOut, META)
        assert len(fake.requests) == 3
        assert fake.requests[2].response_format == accepted.response_format


def test_a_forced_unsupported_mode_fails_at_once_with_the_servers_message() -> None:
    with FakeOpenAI(dialect="llama.cpp") as fake:
        with pytest.raises(ProviderError) as info:
            provider(fake.base_url, structured_output="json_schema").complete(
                "dev", MESSAGES, ResultOut, META)
        assert len(fake.requests) == 1  # not retried as if it were transient
        assert "500 Internal Server Error" in str(info.value)
        assert "Input should be 'text' or 'json_object'" in str(info.value)


def test_the_schema_is_cut_to_the_decomposition_depth() -> None:
    with FakeOpenAI(dialect="llama.cpp") as fake:
        provider(fake.base_url, structured_output="json_object_schema").complete(
            "pm", MESSAGES, BacklogOutput, META)
        schema = (fake.requests[0].response_format or {})["schema"]
        assert "PlannedTask" not in json.dumps(schema)  # no recursion left
        task = schema["properties"]["tasks"]["items"]
        assert schema["properties"]["tasks"]["maxItems"] == 60
        subtask = task["properties"]["subtasks"]["items"]
        assert subtask["properties"]["subtasks"]["maxItems"] == 0


def test_each_attempt_is_logged_with_its_usage_estimated_where_the_server_gave_none() -> None:
    with FakeOpenAI() as fake:
        fake.script(Reply(status=500, body={"error": {"message": "overloaded"}}),
                    Reply(usage=None), Reply())
        p = provider(fake.base_url)
        done = p.complete("dev", [Message("user", "z" * 400)], DevOutput, META)
        # No usage in the body: estimated from the sizes, and the answer still counts.
        assert done.usage.calls == 2
        a500, a200 = (done.transcript or {})["attempts"]
        assert a500["status"] == 500 and a500["estimated"] is True and a500["prompt_tokens"] > 100
        assert a200["estimated"] is True and a200["completion_tokens"] > 0
        assert done.usage.estimated_tokens == (a500["prompt_tokens"] + a200["prompt_tokens"]
                                               + a200["completion_tokens"])


def test_the_budget_is_reserved_per_http_attempt_reasks_included() -> None:
    with FakeOpenAI() as fake:
        fake.script(Reply(content='{"response": 1}', usage=(300, 40)))
        p = provider(fake.base_url, max_output_tokens=600)
        budget = Budget(BudgetConfig(max_tokens=1000), project="p1")
        p.attach_budgets(lambda project: budget)
        with pytest.raises(BudgetExceeded) as info:
            p.complete("dev", MESSAGES, ResultOut, META)
        # The first attempt was paid (340); the re-ask would reserve its prompt + 600 more
        # than the 1000 allow: refused before it was sent, and the spend travels with it.
        assert len(fake.requests) == 1
        assert budget.used_tokens == 340 and budget.pending_tokens == 0
        used = getattr(info.value, "usage", None)
        assert used is not None and (used.prompt_tokens, used.completion_tokens) == (300, 40)
        assert getattr(info.value, "transcript", {})["attempts"][0]["status"] == 200


def test_the_schema_is_narrowed_to_the_ids_the_rules_allow() -> None:
    from orchestrator.agents.outputs import SpecReviewOutput

    meta = CallMeta(project="p1", actor="cto", kind="review_spec",
                    choices=(("requirements.area", ("Backend", "general")),),
                    sequences=(("requirements", "id", ("FR-1", "FR-2")),))
    with FakeOpenAI(dialect="llama.cpp") as fake:
        done = provider(fake.base_url, structured_output="json_object_schema").complete(
            "cto", MESSAGES, SpecReviewOutput, meta)
        schema = (fake.requests[0].response_format or {})["schema"]
        reqs = schema["properties"]["requirements"]
        # Spelled out for a grammar: one item per id, in order, and no other item.
        assert (reqs["minItems"], reqs["maxItems"], reqs["items"]) == (2, 2, False)
        assert [i["properties"]["id"]["enum"] for i in reqs["prefixItems"]] == [["FR-1"],
                                                                               ["FR-2"]]
        assert all(i["properties"]["area"]["enum"] == ["Backend", "general"]
                   for i in reqs["prefixItems"])
        assert schema == narrow(strict_schema(SpecReviewOutput, 1), meta.choices,
                                meta.sequences, positional=True)
        # A grammar held to it: the answer names each of the spec's ids once, in order.
        assert [r.id for r in done.output.requirements] == ["FR-1", "FR-2"]
        assert strict_schema(SpecReviewOutput)["$defs"]["RequirementItem"]["properties"][
            "id"].get("enum") is None  # the cached schema is untouched
    with FakeOpenAI() as fake:  # strict json_schema has no prefixItems: the ids as an enum
        provider(fake.base_url, structured_output="json_schema").complete(
            "cto", MESSAGES, SpecReviewOutput, meta)
        strict = (fake.requests[0].response_format or {})["json_schema"]["schema"]
        reqs = strict["properties"]["requirements"]
        assert "prefixItems" not in reqs and reqs["items"]["properties"]["id"]["enum"] == [
            "FR-1", "FR-2"]
