"""What each role answers: one pydantic model per kind of work, sent to models as a JSON schema.

Every field is required and no model holds an open mapping, so the schemas work with strict
structured outputs; optional things are empty lists or strings. `maxItems` in a field's schema
is how much of that list the agents use: it tells a grammar-constrained model where to stop,
while a longer answer still validates (and is cut by the agent).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResultOut(_Out):
    """The result template's sections: [EXPECTED RETURN RESPONSE], [ANY OTHER ...], [SUGGESTIONS]."""

    response: str = Field(description="What the brief's EXPECTED RETURN asked for.")
    additional_info: str = Field(description="Anything else the parent should know.")
    suggestions: str = Field(description="Optional suggestions; empty string if none.")


class RequirementItem(_Out):
    """One requirement of the spec, by id: its words are the spec's own, taken from it."""

    id: str = Field(description="FR-n or NFR-n as written in the spec, or as the brief "
                                "assigns it when the spec gives no ids.")
    area: str = Field(description="The area of work the spec puts it in, in the spec's own "
                                  "words (its section), e.g. backend, web, mobile; or general.")


class SpecReviewOutput(_Out):
    """CTO: the spec as understood."""

    title: str
    summary: str
    requirements: list[RequirementItem]
    areas: list[str] = Field(description="Areas of work the spec names, in its own words.")
    understood_spec_markdown: str
    open_questions: list[str] = Field(json_schema_extra={"maxItems": 20})


SQUAD_NAME = r"^[a-z][a-z0-9-]{0,39}$"
"""What squad names are asked to look like: a word first (a grammar-held 135M model named
thirteen squads by numbers); the agents take any name that normalises to `[a-z0-9-]`."""


class SquadProposal(_Out):
    name: str = Field(description="Short lowercase squad name, e.g. backend, web-basic.",
                      json_schema_extra={"pattern": SQUAD_NAME})
    scope: str
    depends_on: list[str] = Field(description="Names of squads whose work this one needs.")


class RequirementOwner(_Out):
    requirement: str = Field(description="An FR/NFR id of the requirements given.")
    squad: str = Field(description="The name of the one squad that delivers it.",
                       json_schema_extra={"pattern": SQUAD_NAME})


class ProposalOutput(_Out):
    """Engineer: the technical proposal. Which squad delivers what is said once per
    requirement (`owners`), so that no requirement can have two squads or none; a squad
    named there that `squads` does not describe has no dependencies."""

    squads: list[SquadProposal]
    owners: list[RequirementOwner] = Field(
        description="Every requirement once, in the order given, with its one squad.")
    answers: list[str] = Field(description="Answers to the CTO's questions, in order.")
    proposal_markdown: str


class ProposalDecision(_Out):
    """CTO: approve the proposal (and write the Charter) or ask questions."""

    approve: bool
    questions: list[str]
    rationale: str
    charter_markdown: str = Field(description="The Charter when approving; empty otherwise.")


class PlannedTask(_Out):
    key: str = Field(description="Short local key, unique in this backlog, e.g. T1.")
    title: str
    requirements: list[str] = Field(description="FR/NFR ids this task covers.")
    depends_on: list[str] = Field(description="Keys of tasks of this backlog it waits for.")
    expected_files: list[str] = Field(
        description="Files the Dev must write, relative to the squad's folder.",
        json_schema_extra={"maxItems": 10})
    brief: str = Field(description="What the Dev must do, in a few sentences.")
    subtasks: list[PlannedTask] = Field(
        description="For a macro task: its subtasks (same shape); else empty.",
        json_schema_extra={"maxItems": 10})


class DependencyNeed(_Out):
    to_squad: str
    need: str
    task_key: str = Field(description="Key of the task that needs it, or empty.")


class BacklogOutput(_Out):
    """PM: the squad's backlog."""

    tasks: list[PlannedTask] = Field(json_schema_extra={"maxItems": 60})
    dependency_requests: list[DependencyNeed] = Field(json_schema_extra={"maxItems": 10})
    notes: str


class FileOutput(_Out):
    path: str = Field(description="Relative to the squad's folder; no '..', not absolute.")
    content: str


class Blocker(_Out):
    squad: str = Field(description="The squad whose work blocks this task.")
    description: str


class DevOutput(_Out):
    """Dev: the files written and the result; or a blocker instead."""

    files: list[FileOutput]
    result: ResultOut
    blocked: bool
    blocker: Blocker | None


class QaOutput(_Out):
    """QA: a verdict on a task's artifacts against its requirements."""

    passed: bool
    findings: list[str]
    result: ResultOut


class SmokeTestOut(_Out):
    name: str
    passed: bool
    detail: str


class DeployOutput(_Out):
    """DevOps: the release notes and the smoke tests to record."""

    smoke_tests: list[SmokeTestOut]
    release_notes_markdown: str


class ReportOutput(_Out):
    """PM squad report or CTO final report."""

    summary: str
    result: ResultOut


class FixTaskOutput(_Out):
    """The responsible PM's fix task for a cross-team block."""

    title: str
    brief: str
    requirements: list[str]
    expected_files: list[str]


class DependencyAnswer(_Out):
    """CTO: the answer to a squad's dependency request."""

    answer: str
