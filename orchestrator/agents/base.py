"""What every agent shares: its context, the output it returns, and asking the provider."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator.agents.outputs import ResultOut
from orchestrator.core.config import Config
from orchestrator.core.events import CheckOutcome, Link, NewEvent, Payload, SmokeTest, Usage
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief, Result, TemplateError, check_result
from orchestrator.core.paths import PathRefused, confine, project_dir
from orchestrator.core.provider import (
    CallMeta,
    Facts,
    Message,
    Prompt,
    Provider,
    RequirementFact,
)
from orchestrator.core.state import ProjectState
from orchestrator.core.verdict import PlannedCheck

RunChecks = Callable[[str, Mapping[str, str], Sequence[PlannedCheck]], list[CheckOutcome]]
"""Runs checks for (project, files relative to its folder, checks), in the sandbox."""

T = TypeVar("T", bound=BaseModel)


class AgentFailure(Exception):
    """The agent could not produce a result that answers its brief; nothing is written."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind  # the monitor.alert kind: invalid_output, path_refused, ...
        self.reason = reason
        super().__init__(reason)


@dataclass
class AgentContext:
    project: str
    state: ProjectState
    config: Config
    provider: Provider
    read_text: Callable[[str], str | None]
    """Reads a repository-relative file (spec, artifacts); None when absent."""
    prompt: Callable[[str], Prompt]
    """A role's system prompt, handed in by the runtime (agents never read files)."""
    run_deploy: Callable[[str, str, list[str]], SmokeTest] | None = None
    """Runs the configured deploy command for (project, squad, artifacts), if there is one."""
    run_checks: RunChecks | None = None
    """QA's checks; None where nothing may run code (every check is then reported not run)."""


@dataclass
class AgentOutput:
    events: list[NewEvent] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None

    def emit(self, reaction: Reaction, payload: Payload, actor: str | None = None,
             links: Sequence[Link] = ()) -> None:
        self.events.append(NewEvent(
            payload=payload, actor=actor or reaction.actor, causation_id=reaction.causation_id,
            links=tuple(links), usage=self.usage if not self.events else None,
        ))

    def write(self, path: str, text: str) -> Link:
        self.files[path] = text.encode("utf-8")
        if "/qa/" in path or path.endswith("report.md"):
            return Link(kind="report", ref=path)
        return Link(kind="doc" if "/docs/" in path else "artifact", ref=path)


def facts(**values: object) -> str:
    """The `## Facts` block of a brief's context: one `key: value` line each."""
    lines = ["## Facts"]
    for key, value in values.items():
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def requirement_facts(state: ProjectState, ids: Sequence[str]) -> tuple[RequirementFact, ...]:
    return tuple(RequirementFact(rid, state.requirement_details.get(rid, {}).get("text", ""),
                                 state.requirement_details.get(rid, {}).get("area", "general"))
                 for rid in ids)


def requirements_block(state: ProjectState, ids: Sequence[str] | None = None) -> str:
    wanted = list(ids) if ids is not None else list(state.requirements)
    lines = ["## Requirements"]
    for rid in wanted:
        detail = state.requirement_details.get(rid, {})
        lines.append(f"- {rid} ({detail.get('area', 'general')}): {detail.get('text', '')}".rstrip())
    return "\n".join(lines)


def ask(ctx: AgentContext, reaction: Reaction, role: str, brief: Brief,
        output_model: type[T], out: AgentOutput, call_facts: Facts | None = None) -> T:
    """One provider call for `reaction`; usage and transcript are kept on `out`. The brief
    is what a model reads; `call_facts` is the same as data, for the simulated team."""
    prompt = ctx.prompt(role)
    messages = [Message("system", prompt.text), Message("user", brief.render())]
    meta = CallMeta(project=ctx.project, actor=reaction.actor, kind=reaction.kind,
                    subject=reaction.subject, prompt_version=prompt.version,
                    facts=call_facts or Facts())
    completion = ctx.provider.complete(role, messages, output_model, meta)
    usage = completion.usage.model_copy(update={"prompt_version": prompt.version})
    out.usage = _add_usage(out.usage, usage)
    if completion.transcript is not None:
        out.transcripts.append(completion.transcript)
    return completion.output


def _add_usage(a: Usage | None, b: Usage) -> Usage:
    if a is None:
        return b
    return Usage(model=b.model or a.model, prompt_tokens=a.prompt_tokens + b.prompt_tokens,
                 completion_tokens=a.completion_tokens + b.completion_tokens,
                 cost_usd=round(a.cost_usd + b.cost_usd, 6), latency_ms=a.latency_ms + b.latency_ms,
                 calls=a.calls + b.calls, prompt_hash=b.prompt_hash,
                 prompt_version=b.prompt_version)


def docs_path(project: str, name: str) -> str:
    return f"{project_dir(project)}/docs/{name}"


def squad_path(project: str, squad: str, rel: str) -> str:
    """A model-given path inside the squad's folder; AgentFailure(path_refused) otherwise."""
    try:
        return confine(project, squad, rel)
    except PathRefused as exc:
        raise AgentFailure("path_refused", str(exc)) from None


def answered(brief: Brief, result: ResultOut, written: Collection[str]) -> str:
    """The result rendered in its template and held against the brief: a result that does
    not answer (an empty section, an expected file not written) never reaches the parent."""
    text = Result(result.response, result.additional_info, result.suggestions).render()
    try:
        check_result(brief, text, written)
    except TemplateError as exc:
        raise AgentFailure("invalid_output", f"result rejected: {exc}") from None
    return text
