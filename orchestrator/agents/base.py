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
from orchestrator.errors import ProviderError

RunChecks = Callable[[str, Mapping[str, str], Sequence[PlannedCheck]], list[CheckOutcome]]
"""Runs checks for (project, files relative to its folder, checks), in the sandbox."""

T = TypeVar("T", bound=BaseModel)
Check = Callable[[T], list[str]]
"""A content rule held against an answer: what is wrong with it (empty: it holds)."""


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
    read_committed: Callable[[str, str], str | None] | None = None
    """Reads a file as committed at a commit (path, sha); None when absent there."""
    spent: list[Usage] = field(default_factory=list)
    """Every call's usage, failed ones included: what a failed reaction's alert records."""
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    """Every call's transcript, failed ones included (committed next to the alert)."""

    def spent_total(self) -> Usage | None:
        total: Usage | None = None
        for usage in self.spent:
            total = _add_usage(total, usage)
        return total


def spec_text(ctx: AgentContext) -> str | None:
    """The project's spec as committed at its spec_ref, never the working tree: an edit
    not yet committed is never built. A project without a commit (made by hand) reads the
    tree."""
    s = ctx.state
    if not s.spec_path:
        return None
    if s.spec_commit and ctx.read_committed is not None:
        return ctx.read_committed(s.spec_path, s.spec_commit)
    return ctx.read_text(s.spec_path)


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


def known(values: Mapping[str, object], requirements: Sequence[RequirementFact] = (),
          **fields: Any) -> Facts:
    """A call's facts as data (lists as tuples, empty values left out): what the brief says
    in prose, for the simulated team."""
    typed: dict[str, str | int | tuple[str, ...]] = {}
    for key, value in values.items():
        if isinstance(value, list | tuple):
            typed[key] = tuple(str(v) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            typed[key] = value
        elif value not in (None, ""):
            typed[key] = str(value)
    return Facts(values=typed, requirements=tuple(requirements), **fields)


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
        output_model: type[T], out: AgentOutput, call_facts: Facts | None = None,
        check: Check[T] | None = None, choices: dict[str, Sequence[str]] | None = None,
        sequences: dict[str, tuple[str, Sequence[str]]] | None = None) -> T:
    """Provider calls for `reaction` until the answer keeps `check`'s content rule, re-asked
    (at most llm.max_reasks times) naming what is missing; usage and transcripts are kept on
    `out` and, failed calls' too, on `ctx`. AgentFailure when the rule is still broken. The
    brief is what a model reads; `call_facts` is the same as data, for the simulated team.
    `choices` (field path: allowed values) and `sequences` (list path: (key field, the values
    its items take, in order)) let a provider that enforces a schema narrow it to what the
    rule allows."""
    prompt = ctx.prompt(role)
    messages = [Message("system", prompt.text), Message("user", brief.render())]
    meta = CallMeta(project=ctx.project, actor=reaction.actor, kind=reaction.kind,
                    subject=reaction.subject, prompt_version=prompt.version,
                    facts=call_facts or Facts(),
                    choices=tuple((k, tuple(v)) for k, v in (choices or {}).items()),
                    sequences=tuple((k, key, tuple(v))
                                    for k, (key, v) in (sequences or {}).items()))
    reasks = 0
    while True:
        try:
            completion = ctx.provider.complete(role, messages, output_model, meta)
        except ProviderError as exc:
            used = getattr(exc, "usage", None)
            if isinstance(used, Usage):
                ctx.spent.append(used.model_copy(update={"prompt_version": prompt.version}))
            transcript = getattr(exc, "transcript", None)
            if isinstance(transcript, dict):
                ctx.transcripts.append(transcript)
            raise
        usage = completion.usage.model_copy(update={"prompt_version": prompt.version})
        out.usage = _add_usage(out.usage, usage)
        ctx.spent.append(usage)
        if completion.transcript is not None:
            out.transcripts.append(completion.transcript)
            ctx.transcripts.append(completion.transcript)
        problems = check(completion.output) if check is not None else []
        if not problems:
            return completion.output
        listed = "; ".join(problems[:20]) + (f" (+{len(problems) - 20} more)"
                                              if len(problems) > 20 else "")
        if reasks >= ctx.config.llm.max_reasks:
            times = "re-ask" if reasks == 1 else "re-asks"
            raise AgentFailure("invalid_output",
                               f"answer breaks the rules after {reasks} {times}: {listed}")
        reasks += 1
        messages = [*messages,
                    Message("assistant", completion.output.model_dump_json()),
                    Message("user", f"Your previous answer was rejected: {listed}. Answer "
                                    "again with the whole corrected JSON object.")]


def _add_usage(a: Usage | None, b: Usage) -> Usage:
    if a is None:
        return b
    return Usage(model=b.model or a.model, prompt_tokens=a.prompt_tokens + b.prompt_tokens,
                 completion_tokens=a.completion_tokens + b.completion_tokens,
                 cost_usd=round(a.cost_usd + b.cost_usd, 6), latency_ms=a.latency_ms + b.latency_ms,
                 calls=a.calls + b.calls, prompt_hash=b.prompt_hash,
                 prompt_version=b.prompt_version,
                 estimated_tokens=a.estimated_tokens + b.estimated_tokens)


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
