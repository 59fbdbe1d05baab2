"""Event envelope and one payload model per event type: the vocabulary of the log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.core.ids import ACTOR_RE, PROJECT_ID_RE, ULID_RE

SCHEMA_VERSION = 1
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"


class Payload(BaseModel):
    """Base of every payload: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type_name: ClassVar[str] = ""
    default_actor: ClassVar[str] = "spec"
    subject_field: ClassVar[str | None] = None
    """The payload field that names what the event is about (task, module, block)."""

    def subject(self) -> str:
        if self.subject_field is None:
            return ""
        return str(getattr(self, self.subject_field) or "")


Name = str  # documented constraint: NAME_RE


class Usage(BaseModel):
    """What one model call cost: recorded on the event it produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    calls: int = 1
    prompt_hash: str = ""
    prompt_version: str = ""
    """Content hash of the role's prompt file (agents/prompts/<role>.md) the call used."""
    estimated_tokens: int = 0
    """How many of these tokens are estimates: attempts the server gave no count for (a 5xx,
    a timeout, a body without usage)."""


class SquadPlan(BaseModel):
    """One squad of the Engineer's proposal: its name, scope and the squads it waits on."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=NAME_RE)
    scope: str = ""
    depends_on: list[str] = []
    requirements: list[str] = []


class CheckOutcome(BaseModel):
    """One check QA ran (or could not run) on a task's files, as a person can rerun it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    status: Literal["passed", "failed", "not_run"]
    command: str = ""
    """The command, run from the project's folder."""
    detail: str = ""
    """Why it was not run, or a bounded excerpt of a failing run's output."""


class SmokeTest(BaseModel):
    """One smoke test that DevOps ran after a deploy."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    passed: bool
    detail: str = ""


class RequirementRef(BaseModel):
    """One FR/NFR requirement as the CTO understood it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    area: str = "general"
    text: str = ""


_REGISTRY: dict[str, type[Payload]] = {}


def event_type(name: str, actor: str) -> Any:
    """Class decorator: registers a payload model under its event type name."""

    def register(cls: type[Payload]) -> type[Payload]:
        cls.type_name = name
        cls.default_actor = actor
        _REGISTRY[name] = cls
        return cls

    return register


# --- the 14 event types of the source documents -------------------------------------------


@event_type("project.created", "system")
class ProjectCreated(Payload):
    """A spec became a project."""

    spec_path: str = ""
    spec_commit: str = ""
    title: str = ""
    author: str = ""


@event_type("cto.engineer.request", "cto")
class CtoEngineerRequest(Payload):
    """The CTO sends the spec (round 1) or questions (later rounds) to the Engineer."""

    round: int = Field(default=1, ge=1)
    brief: str = ""
    questions: list[str] = []


@event_type("engineer.cto.response", "engineer")
class EngineerCtoResponse(Payload):
    """The Engineer's technical proposal: squads and their dependencies."""

    round: int = Field(default=1, ge=1)
    squads: list[SquadPlan] = []
    answers: list[str] = []
    proposal: str = ""


@event_type("module.planned", "cto")
class ModulePlanned(Payload):
    """The CTO hires a PM for a squad and hands it its scope."""

    subject_field: ClassVar[str | None] = "module"
    module: str = Field(pattern=NAME_RE)
    scope: str = ""
    depends_on: list[str] = []
    requirements: list[str] = []


@event_type("task.assigned", "pm")
class TaskAssigned(Payload):
    """A task goes to a Dev: new, rework after QA, a block fix, reactivated after a block or a
    stale claim, or new work of a change round (`changes`)."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    module: str = Field(default="", pattern=r"^$|" + NAME_RE)
    title: str = ""
    owner_role: str = "dev"
    requirements: list[str] = []
    depends_on: list[str] = []
    parent: str = ""
    reason: Literal["new", "rework", "fix", "reactivated", "changes"] = "new"
    brief: str = ""
    findings: list[str] = []
    fixes_block: str = ""
    expected_files: list[str] = []


@event_type("task.completed", "dev")
class TaskCompleted(Payload):
    """The Dev (or a PM consolidating subtasks) finished a task and wrote its artifacts."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    result: str = ""
    artifacts: list[str] = []
    branch: str = ""
    """The task's branch (`orch/<project>/<task>`) holding the artifacts; '' when they were
    committed on the main branch (logs from before branches, consolidated tasks)."""
    head: str = ""
    """The branch's commit with this attempt's files."""


@event_type("qa.failed", "qa")
class QaFailed(Payload):
    """QA found the task's artifacts short of its requirements."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    findings: list[str] = []
    report: str = ""
    checks: list[CheckOutcome] = []


@event_type("qa.passed", "qa")
class QaPassed(Payload):
    """QA accepted the task's artifacts: every check it ran passed (`checks` says which ran)."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    report: str = ""
    checks: list[CheckOutcome] = []


@event_type("devops.deployed", "devops")
class DevopsDeployed(Payload):
    """DevOps deployed a squad's work and ran the smoke tests."""

    subject_field: ClassVar[str | None] = "module"
    module: str = Field(pattern=NAME_RE)
    bundle: str = ""
    smoke_tests: list[SmokeTest] = []


@event_type("monitor.alert", "monitor")
class MonitorAlert(Payload):
    """A risk the Monitor (or the runtime) saw: rework exhausted, stale claim, budget, loop, failure."""

    subject_field: ClassVar[str | None] = "subject_key"
    kind: Literal[
        "rework_exhausted",
        "stale_claim",
        "budget_exceeded",
        "loop_guard",
        "invalid_output",
        "path_refused",
        "provider_error",
        "deploy_failed",
        "review_abandoned",
        "other",
    ] = "other"
    message: str = ""
    severity: Literal["info", "warning", "error"] = "warning"
    task_id: str = ""
    module: str = ""
    notify: list[str] = []
    reaction: str = ""
    """The reaction that failed closed, `kind[:subject]` (e.g. `plan_backlog:backend`)."""
    reaction_actor: str = ""
    """Whose reaction it was (the causation is the envelope's)."""
    attempt: int = Field(default=0, ge=0)
    """Which failure of that reaction this is, from 1: each one is its own alert."""
    max_failures: int = Field(default=0, ge=0)
    """The bound in force when it was written: that many failures since the last `orch
    retry` and the reaction waits for a person."""

    @property
    def subject_key(self) -> str:
        key = f"{self.kind}:{self.task_id}:{self.module}"
        return f"{key}:{self.reaction}#{self.attempt}" if self.attempt else key


@event_type("block.reported", "pm")
class BlockReported(Payload):
    """A Dev task is blocked by another squad; reported by its PM to the CTO."""

    subject_field: ClassVar[str | None] = "block_id"
    block_id: str = Field(pattern=NAME_RE)
    task_id: str = ""
    reported_by: str = ""
    responsible_squad: str = ""
    description: str = ""


@event_type("block.resolved", "cto")
class BlockResolved(Payload):
    """The block's fix task is done (passed QA, or ended rework-exhausted): the Monitor may
    reactivate the blocked task."""

    subject_field: ClassVar[str | None] = "block_id"
    block_id: str = Field(pattern=NAME_RE)
    fix_task_id: str = ""
    resolution: str = ""


@event_type("pm.cto.dependency_request", "pm")
class DependencyRequest(Payload):
    """A PM needs something of another squad and asks the CTO, never the squad directly."""

    subject_field: ClassVar[str | None] = "dependency_id"
    dependency_id: str = Field(pattern=NAME_RE)
    from_squad: str = ""
    to_squad: str = ""
    need: str = ""
    task_id: str = ""


@event_type("project.completed", "cto")
class ProjectCompleted(Payload):
    """The CTO's final report; the spec's author is told."""

    report: str = ""
    summary: str = ""
    delivered: list[str] = []
    failed: list[str] = []


# --- the events the flow needs besides those ---------------------------------------------


@event_type("spec.reviewed", "cto")
class SpecReviewed(Payload):
    """The CTO wrote down the spec as understood (again in each change round, from the spec
    as committed then: `added`, `changed`, `removed` say what moved since the last round)."""

    summary: str = ""
    requirements: list[str] = []
    details: list[RequirementRef] = []
    doc: str = ""
    round: int = Field(default=1, ge=1)
    ids_assigned: bool = False
    """The spec gives no FR-/NFR- ids: the CTO assigned them, kept across rounds."""
    added: list[str] = []
    changed: list[str] = []
    removed: list[str] = []


@event_type("charter.created", "cto")
class CharterCreated(Payload):
    """The CTO approved the proposal: the Charter fixes the squads."""

    charter: str = ""
    squads: list[SquadPlan] = []
    rounds: int = 1


@event_type("task.started", "dev")
class TaskStarted(Payload):
    """A Dev claimed a task; the claim holds for lease_s seconds."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    lease_s: int = Field(default=600, ge=1)
    worker: str = ""


@event_type("reaction.claimed", "system")
class ReactionClaimed(Payload):
    """A worker claims the reaction (actor, causation) of this event before it calls a model.

    The claim holds for lease_s seconds. `takeover_of` names the claim it replaces: the
    worker's own (a renewal) or another's whose lease ran out; a first claim names none, so
    two first claims of one reaction are one reaction twice and the later is refused.
    """

    subject_field: ClassVar[str | None] = "takeover_of"
    worker: str = Field(min_length=1, max_length=100)
    lease_s: int = Field(default=600, ge=1)
    takeover_of: str = ""
    kind: str = ""


@event_type("task.decomposed", "pm")
class TaskDecomposed(Payload):
    """A PM split a macro task into subtasks; it completes when they all pass."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    subtasks: list[str] = []


@event_type("qa.requested", "monitor")
class QaRequested(Payload):
    """The Monitor sends a completed task to QA."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)


@event_type("devops.requested", "monitor")
class DevopsRequested(Payload):
    """Every task of a squad passed: the Monitor asks DevOps to deploy it."""

    subject_field: ClassVar[str | None] = "module"
    module: str = Field(pattern=NAME_RE)


@event_type("module.completed", "pm")
class ModuleCompleted(Payload):
    """The PM's consolidated squad report; outcome failed when a task ended rework-exhausted."""

    subject_field: ClassVar[str | None] = "module"
    module: str = Field(pattern=NAME_RE)
    report: str = ""
    outcome: Literal["delivered", "failed"] = "delivered"


@event_type("dependency.fulfilled", "cto")
class DependencyFulfilled(Payload):
    """The CTO answered a dependency request (from the other squad's work or the charter)."""

    subject_field: ClassVar[str | None] = "dependency_id"
    dependency_id: str = Field(pattern=NAME_RE)
    answer: str = ""
    artifacts: list[str] = []


@event_type("project.accepted", "spec")
class ProjectAccepted(Payload):
    """The spec's author accepted the result."""

    message: str = ""


@event_type("project.changes_requested", "spec")
class ProjectChangesRequested(Payload):
    """The spec's author asked for changes: another round of work on the same project."""

    message: str = Field(min_length=1)
    spec_commit: str = ""
    """The commit of the spec the next round builds (the spec as committed when asked)."""


@event_type("project.cancelled", "spec")
class ProjectCancelled(Payload):
    """A person ended the project: its reactions stop, its history stays."""

    reason: str = Field(min_length=1, max_length=2000)


@event_type("reaction.retried", "spec")
class ReactionRetried(Payload):
    """A person asked for reactions that failed closed too often to be tried again
    (`orch retry`): `reactions` by `kind[:subject]`, or every waiting one when empty."""

    reactions: list[str] = []


# Review's event types live in their own modules (a task branch's review; its pull request
# on a code host); importing them here registers them with every reader of this one.
from orchestrator.core import pull_events as _pull_events  # noqa: E402, F401
from orchestrator.core import review_events as _review_events  # noqa: E402, F401

SOURCE_EVENT_TYPES: tuple[str, ...] = (
    "cto.engineer.request",
    "engineer.cto.response",
    "project.created",
    "module.planned",
    "task.assigned",
    "task.completed",
    "qa.failed",
    "qa.passed",
    "devops.deployed",
    "monitor.alert",
    "block.reported",
    "block.resolved",
    "pm.cto.dependency_request",
    "project.completed",
)


def payload_types() -> dict[str, type[Payload]]:
    """Every event type name and its payload model."""
    return dict(_REGISTRY)


def payload_model(type_name: str) -> type[Payload]:
    """The payload model of an event type; KeyError names the unknown type."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise KeyError(f"unknown event type '{type_name}'") from None


class Link(BaseModel):
    """Something an event produced or points at: an artifact, a report, a branch, a PR."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["artifact", "report", "doc", "transcript", "branch", "pr", "commit", "claim"]
    ref: str = Field(min_length=1, max_length=500)


class Event(BaseModel):
    """The envelope every event file holds; `payload` is validated by its type's model."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, populate_by_name=True)

    schema_: int = Field(default=SCHEMA_VERSION, alias="schema", ge=1, le=SCHEMA_VERSION)
    id: str = Field(pattern=ULID_RE.pattern)
    seq: int = Field(ge=1, le=99_999_999)
    type: str
    project: str = Field(pattern=PROJECT_ID_RE.pattern)
    request_id: str = Field(min_length=1, max_length=100)
    causation_id: str | None = None
    actor: str = Field(pattern=ACTOR_RE.pattern)
    at: datetime = Field(strict=False)
    payload: Payload
    links: tuple[Link, ...] = Field(default=(), strict=False)
    usage: Usage | None = Field(default=None, strict=False)
    forced: bool = False
    """Written with `orch emit --force` past the checks: verify names it as forced."""

    @model_validator(mode="before")
    @classmethod
    def _typed_payload(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("payload"), Payload):
            model = _REGISTRY.get(str(data.get("type")))
            if model is None:
                raise ValueError(f"unknown event type '{data.get('type')}'")
            data = dict(data)
            data["payload"] = model.model_validate(data.get("payload") or {})
        return data

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp must carry a timezone (UTC)")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _payload_matches_type(self) -> Event:
        if self.payload.type_name != self.type:
            raise ValueError(f"payload is a '{self.payload.type_name}', event is a '{self.type}'")
        return self

    @property
    def squad(self) -> str:
        """The squad part of the actor (`dev.backend` -> `backend`), or ''."""
        return self.actor.partition(".")[2]

    @property
    def role(self) -> str:
        return self.actor.partition(".")[0]

    def reaction_key(self) -> tuple[str, str, str, str] | None:
        """Idempotency key: one reaction per (actor, causation), per event type and subject."""
        if self.causation_id is None:
            return None
        return (self.actor, self.causation_id, self.type, self.payload.subject())

    def to_document(self) -> dict[str, Any]:
        """The plain mapping written to the event file (stable key order)."""
        doc: dict[str, Any] = {
            "schema": self.schema_,
            "id": self.id,
            "seq": self.seq,
            "type": self.type,
            "project": self.project,
            "request_id": self.request_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "payload": self.payload.model_dump(mode="json"),
        }
        if self.links:
            doc["links"] = [link.model_dump() for link in self.links]
        if self.usage is not None:
            doc["usage"] = self.usage.model_dump()
        if self.forced:
            doc["forced"] = True
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Event:
        """Validate a mapping read from an event file (raises pydantic.ValidationError)."""
        return cls.model_validate(doc)


class NewEvent(BaseModel):
    """An event a decider or agent wants written; the writer gives it id, seq and time."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    payload: Payload
    actor: str = Field(pattern=ACTOR_RE.pattern)
    causation_id: str | None = None
    request_id: str | None = None
    links: tuple[Link, ...] = ()
    usage: Usage | None = None
    forced: bool = False
    id: str | None = None
    """Kept when an event made elsewhere is written here (a bundle applied): its id is what
    later events of the bundle name as their causation."""
    at: datetime | None = None

    @property
    def type(self) -> str:
        return self.payload.type_name


def event_file_name(event: Event) -> str:
    """`<seq>-<id>.<type>.yaml`, seq zero-padded so names sort in fold order."""
    return f"{event.seq:08d}-{event.id}.{event.type}.yaml"


def event_rel_dir(project: str, seq: int) -> str:
    """The shard folder of an event: at most 1000 files per folder keeps git fast."""
    return f"{project}/{seq // 1000:04d}"
