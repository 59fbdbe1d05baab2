"""The content rules held against answers, whatever the provider: a review missing a
requirement of the spec, a proposal or Charter leaving one unowned, a backlog not covering its
squad are re-asked naming what is missing, bounded by max_reasks, and never written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from orchestrator.agents import cto, engineer, pm
from orchestrator.agents.base import AgentContext, AgentFailure
from orchestrator.agents.outputs import (
    BacklogOutput,
    PlannedTask,
    ProposalDecision,
    ProposalOutput,
    RequirementItem,
    RequirementOwner,
    SpecReviewOutput,
    SquadProposal,
)
from orchestrator.core.config import Config
from orchestrator.core.events import Usage
from orchestrator.core.flow import Reaction
from orchestrator.core.fold import fold_project
from orchestrator.core.provider import CallMeta, Completion, Message, Prompt
from tests.unit.test_fold import make

T = TypeVar("T", bound=BaseModel)
SPEC = "# Tracker\n\n- FR-1: create tasks\n- FR-2: list tasks\n- NFR-1: answers in 1 s\n"


class Scripted:
    """Answers from a list, in order (the last one repeats); keeps every prompt it got."""

    name = "scripted"

    def __init__(self, *answers: BaseModel) -> None:
        self.answers = list(answers)
        self.prompts: list[list[Message]] = []
        self.metas: list[CallMeta] = []

    def complete(self, role: str, messages: Sequence[Message], output_model: type[T],
                 meta: CallMeta) -> Completion[T]:
        self.prompts.append(list(messages))
        self.metas.append(meta)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        assert isinstance(answer, output_model)
        return Completion(output=answer, usage=Usage(prompt_tokens=10, completion_tokens=5))


def context(provider: Scripted, *extra: Any, max_reasks: int = 2) -> AgentContext:
    log = [make("project.created", 1, spec_path="specs/t.md", spec_commit="abc"), *extra]
    config = Config.model_validate({"llm": {"max_reasks": max_reasks}})
    return AgentContext(project="p1", state=fold_project("p1", log), config=config,
                        provider=provider, read_text={"specs/t.md": SPEC}.get,
                        prompt=lambda role: Prompt(role, f"You are the {role}.", "v1"))


def review(*ids: str) -> SpecReviewOutput:
    return SpecReviewOutput(
        title="t", summary="s", areas=["backend"], understood_spec_markdown="# t",
        open_questions=[], requirements=[RequirementItem(id=i, area="backend")
                                         for i in ids])


def reaction(kind: str, actor: str, causation: str, subject: str = "") -> Reaction:
    return Reaction(kind=kind, actor=actor, causation_id=causation, outputs=("x",),
                    subject=subject)


def last_user(provider: Scripted) -> str:
    return provider.prompts[-1][-1].content


def test_a_review_missing_a_requirement_is_reasked_naming_it() -> None:
    provider = Scripted(review("FR-1", "NFR-1"), review("FR-1", "FR-2", "NFR-1"))
    ctx = context(provider)
    out = cto.review_spec(ctx, reaction("review_spec", "cto", ctx.state.created_event))
    assert len(provider.prompts) == 2
    assert "FR-2" in last_user(provider) and "leaves out" in last_user(provider)
    assert out.events[0].payload.requirements == ["FR-1", "FR-2", "NFR-1"]  # type: ignore[attr-defined]
    assert len(ctx.spent) == 2 and out.usage is not None and out.usage.calls == 2


def test_a_review_that_keeps_missing_it_fails_closed_and_writes_nothing() -> None:
    provider = Scripted(review("FR-1"))
    ctx = context(provider, max_reasks=1)
    with pytest.raises(AgentFailure) as info:
        cto.review_spec(ctx, reaction("review_spec", "cto", ctx.state.created_event))
    assert info.value.kind == "invalid_output" and "after 1 re-ask" in info.value.reason
    assert "FR-2" in info.value.reason and "NFR-1" in info.value.reason
    assert len(provider.prompts) == 2 and len(ctx.spent) == 2  # what the alert will carry


def reviewed() -> list[Any]:
    return [make("spec.reviewed", 2, requirements=["FR-1", "FR-2", "NFR-1"]),
            make("cto.engineer.request", 3, round=1)]


def proposal(**squads: list[str]) -> ProposalOutput:
    return ProposalOutput(answers=[], proposal_markdown="# p", squads=[
        SquadProposal(name=name, scope=name, depends_on=[]) for name in squads], owners=[
        RequirementOwner(requirement=rid, squad=name) for name, reqs in squads.items()
        for rid in reqs])


def test_a_proposal_leaving_a_requirement_unowned_is_reasked_naming_it() -> None:
    provider = Scripted(proposal(backend=["FR-1", "FR-2"], web=["FR-2"]),
                        proposal(backend=["FR-1", "FR-2", "NFR-1"]))
    ctx = context(provider, *reviewed())
    out = engineer.propose(ctx, reaction("propose", "engineer", ctx.state.last_review_event))
    text = last_user(provider)
    assert "NFR-1 has no squad" in text and "FR-2 is given to 2 squads" in text
    [event] = out.events
    assert [sq.name for sq in event.payload.squads] == ["backend"]  # type: ignore[attr-defined]


def test_a_review_gives_areas_by_id_and_the_spec_keeps_its_words() -> None:
    answer = SpecReviewOutput(title="t", summary="s", areas=[], understood_spec_markdown="u",
                              open_questions=[], requirements=[
                                  RequirementItem(id="fr-1 ", area="Backend"),
                                  RequirementItem(id="FR-2", area=""),
                                  RequirementItem(id="NFR-1", area="ops"),
                                  RequirementItem(id="FR-1", area="web")])  # first one wins
    provider = Scripted(answer)
    ctx = context(provider)
    out = cto.review_spec(ctx, reaction("review_spec", "cto", ctx.state.created_event))
    details = out.events[0].payload.details  # type: ignore[attr-defined]
    assert [(d.id, d.area, d.text) for d in details] == [
        ("FR-1", "backend", "create tasks"), ("FR-2", "general", "list tasks"),
        ("NFR-1", "ops", "answers in 1 s")]
    # What a provider that enforces the schema may spell out: each of the spec's ids once.
    [meta] = provider.metas
    assert meta.sequences == (("requirements", "id", ("FR-1", "FR-2", "NFR-1")),)


def test_a_proposal_s_owners_make_the_squads() -> None:
    answer = ProposalOutput(answers=[], proposal_markdown="# p", squads=[
        SquadProposal(name="Web App", scope="the pages", depends_on=["backend", "nowhere"]),
        SquadProposal(name="idle", scope="owns nothing", depends_on=[])], owners=[
        RequirementOwner(requirement="FR-1", squad="backend"),
        RequirementOwner(requirement="fr-2", squad="web app"),
        RequirementOwner(requirement="FR-9", squad="idle"),  # no such requirement
        RequirementOwner(requirement="NFR-1", squad="backend")])
    squads = engineer.proposed_squads(answer, ["FR-1", "FR-2", "NFR-1"])
    # Described squads first (a squad owning nothing is none), then the ones only owners
    # name, which deliver what they own and depend on nothing; dependencies on squads listed
    # later or unknown are dropped (no cycles).
    assert [(sq.name, sq.requirements, sq.depends_on, sq.scope) for sq in squads] == [
        ("web-app", ["FR-2"], [], "the pages"),
        ("backend", ["FR-1", "NFR-1"], [], "Delivers FR-1, NFR-1.")]


def test_a_charter_leaving_a_requirement_unowned_is_never_written() -> None:
    approve = ProposalDecision(approve=True, questions=[], rationale="ok", charter_markdown="# c")
    unowned = make("engineer.cto.response", 4, round=1,
                   squads=[{"name": "backend", "requirements": ["FR-1", "FR-2"]}])
    ctx = context(Scripted(approve), *reviewed(), unowned)
    out = cto.decide_proposal(ctx, reaction("decide_proposal", "cto", unowned.id))
    [event] = out.events  # no Charter: the Engineer is asked to fix the proposal
    assert event.type == "cto.engineer.request"
    assert any("NFR-1 has no squad" in q for q in event.payload.questions)  # type: ignore[attr-defined]
    assert not out.files

    last = Config.model_validate({"max_review_rounds": 1})
    ctx = context(Scripted(approve), *reviewed(), unowned)
    ctx.config = last
    with pytest.raises(AgentFailure, match="NFR-1 has no squad"):
        cto.decide_proposal(ctx, reaction("decide_proposal", "cto", unowned.id))


def test_a_refusal_without_questions_passes_its_rationale_on() -> None:
    refuse = ProposalDecision(approve=False, questions=[" "], rationale="Split the web\nwork.",
                              charter_markdown="")
    owned = make("engineer.cto.response", 4, round=1,
                 squads=[{"name": "backend", "requirements": ["FR-1", "FR-2", "NFR-1"]}])
    ctx = context(Scripted(refuse), *reviewed(), owned)
    [event] = cto.decide_proposal(ctx, reaction("decide_proposal", "cto", owned.id)).events
    assert event.payload.questions == [  # type: ignore[attr-defined]
        "Revise the proposal: Split the web work."]


def task(key: str, *reqs: str, subtasks: Sequence[PlannedTask] = ()) -> PlannedTask:
    return PlannedTask(key=key, title=key, requirements=list(reqs), depends_on=[],
                       expected_files=[f"{key}.py"], brief=key, subtasks=list(subtasks))


def test_a_backlog_must_cover_its_squad_and_discarded_depth_does_not_count() -> None:
    deep = task("T1", "FR-1", subtasks=[task("T1a", subtasks=[task("T1a1", "FR-2")])])
    backlog = BacklogOutput(tasks=[deep], dependency_requests=[], notes="")
    fixed = BacklogOutput(tasks=[task("T1", "FR-1"), task("T2", "fr-2")],
                          dependency_requests=[], notes="")
    planned = make("module.planned", 6, module="backend", requirements=["FR-1", "FR-2"])
    charter = make("charter.created", 5, squads=[{"name": "backend",
                                                  "requirements": ["FR-1", "FR-2"]}])
    provider = Scripted(backlog, fixed)
    ctx = context(provider, *reviewed(), charter, planned)
    out = pm.plan_backlog(ctx, reaction("plan_backlog", "pm.backend", planned.id, "backend"))
    # FR-2 sat past max_decomposition_depth 1, where the PM discards it: re-asked.
    assert "no task covers FR-2" in last_user(provider)
    reqs = [e.payload.requirements for e in out.events if e.type == "task.assigned"]  # type: ignore[attr-defined]
    assert reqs == [["FR-1"], ["FR-2"]]  # the model's "fr-2" is the spec's FR-2
