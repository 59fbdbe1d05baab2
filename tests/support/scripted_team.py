"""A responder for the fake OpenAI server that answers like the offline team would.

    team = ScriptedTeam()
    with FakeOpenAI(responder=team) as server:
        ...  # `orch run` with `llm: {provider: openai, base_url: server.base_url}`

The fake server's default answers (minimal valid objects: strings "x", empty lists) cannot
drive a project: a spec review with no requirements fails closed. `ScriptedTeam` answers each
request sensibly instead, by handing it to the project's own `OfflineProvider`: it reads the
request's messages and the schema name (`response_format.json_schema.name`; in JSON mode the
name the system message gives, else the embedded schema itself), maps the name to its output
model in `orchestrator.agents.outputs`, and returns the offline answer's JSON. So a real HTTP
round trip through the real `openai` client drives the whole flow, deterministically.

Re-ask turns (an assistant answer and a user complaint appended to the brief) are ignored: the
answer is built from the original brief, as the first time.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from importlib import resources
from typing import Any, NamedTuple

from pydantic import BaseModel

from orchestrator.adapters.llm.openai_provider import strict_schema
from orchestrator.adapters.llm.transcripts import schema_name
from orchestrator.agents import outputs
from orchestrator.core.config import OfflineConfig
from orchestrator.core.provider import CallMeta, Message
from orchestrator.sim.provider import OfflineProvider
from tests.support.fake_openai import Reply, schema_in_text

ROLES = ("cto", "engineer", "pm", "dev", "qa", "devops")
_JSON_MODE_NAME = re.compile(r"Answer with exactly one JSON object \(([A-Za-z0-9_-]{1,64})\)")


class Answered(NamedTuple):
    """One request the team answered: who, what, and the usage it reported (0 if not its own)."""

    role: str
    schema: str
    prompt_tokens: int
    completion_tokens: int


def output_models() -> dict[str, type[BaseModel]]:
    """Every output model of the agents, by the schema name the provider sends."""
    found: dict[str, type[BaseModel]] = {}
    for _, value in inspect.getmembers(outputs, inspect.isclass):
        if issubclass(value, BaseModel) and value.__module__ == outputs.__name__:
            found[schema_name(value)] = value
    return found


def _role_prompts() -> dict[str, str]:
    base = resources.files("orchestrator.agents")
    return {role: base.joinpath(f"prompts/{role}.md").read_text(encoding="utf-8")
            for role in ROLES}


class ScriptedTeam:
    """`FakeOpenAI(responder=ScriptedTeam())`: offline answers over HTTP.

    `realistic_usage` reports usage from the sizes (prompt characters / 4, answer characters
    / 4) instead of the fake server's fixed (11, 7), so budgets see plausible numbers; and, as
    a real server does, an answer longer than the request's `max_tokens` (or
    `max_completion_tokens`) is cut there and ends with `finish_reason: length`.
    `calls` lists every request answered (`Answered`), in arrival order.
    """

    def __init__(
        self,
        config: OfflineConfig | None = None,
        *,
        project: str = "",
        realistic_usage: bool = True,
    ) -> None:
        self.provider = OfflineProvider(config or OfflineConfig())
        self.project = project
        self.realistic_usage = realistic_usage
        self.models = output_models()
        self.prompts = _role_prompts()
        self.calls: list[Answered] = []
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str | Reply | None:
        messages = [m for m in request.get("messages", []) if isinstance(m, dict)]
        model = self.output_model(request, messages)
        role = self.role_of(messages)
        brief = self._original_brief(messages)
        meta = CallMeta(project=self.project, actor=role, kind="call")
        completion = self.provider.complete(role, brief, model, meta)
        content = completion.output.model_dump_json()
        if not self.realistic_usage:
            self._note(Answered(role, schema_name(model), 0, 0))
            return content
        rf = request.get("response_format")
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        prompt_chars += len(json.dumps(rf)) if isinstance(rf, dict) else 0
        prompt_tokens = prompt_chars // 4 + 1
        completion_tokens = len(content) // 4 + 1
        limit = request.get("max_completion_tokens", request.get("max_tokens"))
        if isinstance(limit, int) and completion_tokens > limit:
            self._note(Answered(role, schema_name(model), prompt_tokens, limit))
            return Reply(content=content[: limit * 4], finish_reason="length",
                         usage=(prompt_tokens, limit))
        self._note(Answered(role, schema_name(model), prompt_tokens, completion_tokens))
        return Reply(content=content, usage=(prompt_tokens, completion_tokens))

    def _note(self, answered: Answered) -> None:
        with self._lock:
            self.calls.append(answered)

    # reading a request ---------------------------------------------------------------------

    def output_model(
        self, request: dict[str, Any], messages: list[dict[str, Any]]
    ) -> type[BaseModel]:
        """The output model the request asks for; KeyError naming what was found otherwise."""
        rf = request.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            name = str(rf.get("json_schema", {}).get("name", ""))
            if name in self.models:
                return self.models[name]
            raise KeyError(f"unknown schema name {name!r}")
        system = "\n".join(str(m.get("content", "")) for m in messages
                           if m.get("role") == "system")
        match = _JSON_MODE_NAME.search(system)
        if match and match.group(1) in self.models:
            return self.models[match.group(1)]
        schema = schema_in_text(system)
        if schema is not None:
            for model in self.models.values():
                if strict_schema(model) == schema:
                    return model
        raise KeyError("no schema name in response_format nor in the system message")

    def role_of(self, messages: list[dict[str, Any]]) -> str:
        """The role whose prompt opens the system message ('agent' if none does)."""
        system = next((str(m.get("content", "")) for m in messages
                       if m.get("role") == "system"), "")
        for role, prompt in self.prompts.items():
            if system.startswith(prompt):
                return role
        return "agent"

    @staticmethod
    def _original_brief(messages: list[dict[str, Any]]) -> list[Message]:
        """The messages up to the first user message (the brief), without re-ask turns."""
        kept: list[Message] = []
        for m in messages:
            role = m.get("role")
            if role not in ("system", "user", "assistant"):
                continue
            kept.append(Message(role, str(m.get("content", ""))))
            if role == "user":
                break
        return kept
