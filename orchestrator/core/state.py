"""The state folded from the log: projects, squads (modules), tasks, blocks, and their statuses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class ProjectStatus(StrEnum):
    CREATED = "created"
    SPEC_REVIEWED = "spec_reviewed"
    PLANNING = "planning"
    CHARTERED = "chartered"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    CHANGES_REQUESTED = "changes_requested"
    CANCELLED = "cancelled"


class ModuleStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DEPLOYING = "deploying"
    DEPLOYED = "deployed"
    COMPLETED = "completed"
    FAILED = "failed"


class TaskStatus(StrEnum):
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    DECOMPOSED = "decomposed"
    COMPLETED = "completed"
    IN_QA = "in_qa"
    QA_FAILED = "qa_failed"
    PASSED = "passed"
    BLOCKED = "blocked"
    REWORK_EXHAUSTED = "rework_exhausted"
    IN_REVIEW = "in_review"
    """QA passed; the task's branch waits to be merged (at once under `review: auto`, after
    a person's approval under `review: human`)."""
    ABANDONED = "abandoned"
    """Its review ended without a merge (a pull request closed unmerged)."""


TASK_FAILED = frozenset({TaskStatus.REWORK_EXHAUSTED, TaskStatus.ABANDONED})
"""A task that ended without its work landing: its squad is not deployed."""
TASK_DONE = frozenset({TaskStatus.PASSED, *TASK_FAILED})
MODULE_DONE = frozenset({ModuleStatus.COMPLETED, ModuleStatus.FAILED})


@dataclass
class Task:
    id: str
    module: str
    owner_role: str = "dev"
    status: TaskStatus = TaskStatus.ASSIGNED
    attempt: int = 1
    requirements: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    parent: str = ""
    title: str = ""
    subtasks: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    blocked_by: str = ""
    fixes_block: str = ""
    assigned_event: str = ""
    last_event: str = ""
    claimed_at: str = ""
    claimed_by: str = ""
    lease_s: int = 0
    round: int = 1
    reason: str = "new"
    brief: str = ""
    expected_files: list[str] = field(default_factory=list)
    depth: int = 0
    branch: str = ""
    """`orch/<project>/<task>` once a Dev committed files there; kept after the merge."""
    head: str = ""
    """The branch's commit of the latest attempt."""
    review_event: str = ""
    """The review.requested of the current attempt ('' when none is open)."""
    approved_event: str = ""
    """A person's review.approved of the current attempt that orch has still to merge."""
    conflicts: list[str] = field(default_factory=list)
    """Paths the branch conflicted with the main branch in: what the rework must reconcile."""
    merged: bool = False


@dataclass
class Module:
    name: str
    status: ModuleStatus = ModuleStatus.PLANNED
    depends_on: list[str] = field(default_factory=list)
    scope: str = ""
    requirements: list[str] = field(default_factory=list)
    planned_event: str = ""
    report: str = ""
    bundle: str = ""
    round: int = 1
    last_event: str = ""
    smoke_failed: list[str] = field(default_factory=list)


@dataclass
class Claim:
    """Who holds a reaction (actor, causation) and until when; `done` once a result landed."""

    event_id: str
    worker: str
    at: str
    lease_s: int
    done: bool = False


@dataclass
class Block:
    id: str
    task_id: str
    reported_by: str
    responsible_squad: str
    description: str
    status: str = "open"
    fix_task_id: str = ""
    reported_event: str = ""
    resolved_event: str = ""


@dataclass
class Dependency:
    id: str
    from_squad: str
    to_squad: str
    need: str
    task_id: str = ""
    status: str = "open"
    answer: str = ""
    requested_event: str = ""


@dataclass
class Alert:
    event_id: str
    kind: str
    message: str
    severity: str
    task_id: str = ""
    module: str = ""
    at: str = ""
    reaction: str = ""
    attempt: int = 0
    state: str = "current"
    """current; superseded (a later failure of the same reaction says why now); resolved (the
    reaction, or the task's rework, later succeeded)."""


@dataclass
class FailingReaction:
    """A reaction that failed closed: how often since the last `orch retry`, and its alerts."""

    actor: str
    causation: str
    reaction: str
    failures: int = 0
    attempts: int = 0
    alerts: list[int] = field(default_factory=list)
    """Indexes into ProjectState.alerts, oldest first."""
    limit: int = 0
    """The latest alert's bound: `failures >= limit` means it waits for `orch retry`."""

    @property
    def waiting(self) -> bool:
        return 0 < self.limit <= self.failures


@dataclass
class Notice:
    """Something the spec's author is told: a block, a completion, a failure."""

    event_id: str
    kind: str
    message: str
    at: str = ""


@dataclass
class Finding:
    """A problem in the log: kept out of the state, named for the reader and for `orch verify`."""

    reason: str
    event_id: str = ""
    type: str = ""
    seq: int = 0
    path: str = ""
    line: int | None = None

    def describe(self) -> str:
        where = self.path or (f"event {self.event_id}" if self.event_id else "log")
        if self.line:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}"


@dataclass
class UsageTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    estimated_tokens: int = 0
    """Of the tokens, those estimated (attempts the server gave no count for)."""


@dataclass
class ProjectState:
    id: str
    status: ProjectStatus = ProjectStatus.CREATED
    spec_ref: str = ""
    title: str = ""
    author: str = ""
    request_id: str = ""
    created_event: str = ""
    round: int = 1
    review_round: int = 0
    last_review_event: str = ""
    last_review_type: str = ""
    spec_path: str = ""
    spec_commit: str = ""
    spec_review_round: int = 0
    """The last round whose spec review is in the log (each change round reviews again)."""
    spec_review_event: str = ""
    ids_assigned: bool = False
    round_changes: dict[str, list[str]] = field(default_factory=dict)
    """added / changed / removed requirement ids of this round's spec review."""
    cancel_reason: str = ""
    requirements: list[str] = field(default_factory=list)
    requirement_details: dict[str, dict[str, str]] = field(default_factory=dict)
    last_questions: list[str] = field(default_factory=list)
    proposed_squads: list[dict[str, Any]] = field(default_factory=list)
    charter_squads: list[dict[str, Any]] = field(default_factory=list)
    charter_event: str = ""
    changes_event: str = ""
    change_requests: list[str] = field(default_factory=list)
    modules: dict[str, Module] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    pulls: dict[str, dict[str, Any]] = field(default_factory=dict)
    """A task's pull request on the code host (review.host: github): number, url, branch."""
    blocks: dict[str, Block] = field(default_factory=dict)
    dependencies: dict[str, Dependency] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    usage: UsageTotals = field(default_factory=UsageTotals)
    failing: dict[str, FailingReaction] = field(default_factory=dict)
    """Reactions that failed closed and have not succeeded since, by `failing_key`."""
    claims: dict[str, Claim] = field(default_factory=dict)
    """The current claim of each claimed reaction, by `claim_key(actor, causation)`."""
    claim_keys: dict[str, str] = field(default_factory=dict)
    """Every accepted claim event's id -> the reaction it claimed."""
    reactions: set[tuple[str, str, str, str]] = field(default_factory=set)
    reacted: set[tuple[str, str, str]] = field(default_factory=set)
    """(actor, causation, type) of every reaction event: what the deciders check."""
    events: int = 0
    round_events: int = 0
    last_seq: int = 0
    last_id: str = ""
    last_at: str = ""

    def has_reacted(self, actor: str, causation: str, type_name: str) -> bool:
        return (actor, causation, type_name) in self.reacted

    def failures_of(self, actor: str, causation: str) -> int:
        """How often this reaction failed closed since it was last retried by a person."""
        found = self.failing.get(failing_key(actor, causation))
        return found.failures if found else 0

    def module_tasks(self, module: str, round_: int | None = None) -> list[Task]:
        return [
            t for t in self.tasks.values()
            if t.module == module and (round_ is None or t.round == round_)
        ]

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> ProjectState:
        """A state from the plain mapping the cache adapter wrote it as."""
        state = cls(id=data["id"])
        for f in fields(cls):
            if f.name not in data:
                continue  # a field newer than the cache keeps its default
            value = data[f.name]
            if f.name == "modules":
                value = {k: Module(**v) for k, v in value.items()}
                for m in value.values():
                    m.status = ModuleStatus(m.status)
            elif f.name == "tasks":
                value = {k: Task(**v) for k, v in value.items()}
                for t in value.values():
                    t.status = TaskStatus(t.status)
            elif f.name == "claims":
                value = {k: Claim(**v) for k, v in value.items()}
            elif f.name == "blocks":
                value = {k: Block(**v) for k, v in value.items()}
            elif f.name == "dependencies":
                value = {k: Dependency(**v) for k, v in value.items()}
            elif f.name == "alerts":
                value = [Alert(**v) for v in value]
            elif f.name == "notices":
                value = [Notice(**v) for v in value]
            elif f.name == "findings":
                value = [Finding(**v) for v in value]
            elif f.name == "usage":
                value = UsageTotals(**value)
            elif f.name == "failing":
                value = {k: FailingReaction(**v) for k, v in value.items()}
            elif f.name in ("reactions", "reacted"):
                value = {tuple(k) for k in value}
            elif f.name == "status":
                value = ProjectStatus(value)
            setattr(state, f.name, value)
        return state


def failing_key(actor: str, causation: str) -> str:
    """A reaction's key in ProjectState.failing (a string: the cache is JSON)."""
    return f"{actor} {causation}"
