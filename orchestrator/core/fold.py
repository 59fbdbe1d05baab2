"""The deterministic fold: events ordered by (seq, id) into project states, never raising.

An event that would make an illegal transition, or that repeats a reaction already seen
(same actor, causation, type and subject), is kept out of the state and reported as a
finding. Each handler checks everything before it changes anything, so a refused event
leaves the state as it was. Handlers update the fold's own state in place: copying a
project's state per event would make folding 100k events quadratic.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import singledispatch

from orchestrator.core import claims, failures
from orchestrator.core import events as ev
from orchestrator.core.ids import ROLES
from orchestrator.core.state import (
    MODULE_DONE,
    TASK_DONE,
    TASK_FAILED,
    Alert,
    Block,
    Dependency,
    Finding,
    Module,
    ModuleStatus,
    Notice,
    ProjectState,
    ProjectStatus,
    Task,
    TaskStatus,
)

TASK_FAILING_ALERTS = failures.TASK_FAILING_ALERTS


class IllegalTransition(Exception):
    """A handler's refusal: the event does not fit the state it meets."""


def fold(events: Iterable[ev.Event]) -> dict[str, ProjectState]:
    """Fold a whole log: every project's state, in (seq, id) order."""
    by_project: dict[str, list[ev.Event]] = {}
    for event in events:
        by_project.setdefault(event.project, []).append(event)
    return {p: fold_project(p, evs) for p, evs in sorted(by_project.items())}


def fold_project(
    project: str, events: Iterable[ev.Event], state: ProjectState | None = None
) -> ProjectState:
    """Apply events of one project to `state` (or a fresh one); events are sorted here."""
    state = state if state is not None else ProjectState(id=project)
    for event in sorted(events, key=lambda e: (e.seq, e.id)):
        apply_event(state, event)
    return state


def apply_event(state: ProjectState, event: ev.Event) -> bool:
    """Apply one event; returns False (and records a finding) when it is refused."""
    state.events += 1
    state.round_events += 1
    if (event.seq, event.id) > (state.last_seq, state.last_id):
        state.last_seq, state.last_id = event.seq, event.id
    state.last_at = max(state.last_at, _at(event))
    key = event.reaction_key()
    if key is not None and key in state.reactions:
        _refuse(state, event, f"duplicate reaction of {event.actor} to {event.causation_id}")
        return False
    try:
        if event.role not in ROLES:
            raise IllegalTransition(f"actor '{event.actor}' is no role of orch")
        if event.type != "project.created" and not state.created_event:
            raise IllegalTransition("project has no project.created event")
        fenced = claims.fence_refusal(state, event)
        if fenced is not None:
            raise IllegalTransition(fenced)
        _apply(event.payload, event, state)
    except IllegalTransition as exc:
        _refuse(state, event, str(exc))
        return False
    claims.mark_done(state, event)
    if key is not None:
        state.reactions.add(key)
        state.reacted.add(key[:3])
        if state.failing and event.type not in failures.NOT_RESOLVING:
            failures.resolve(state, event.actor, key[1])
    if event.usage is not None:
        state.usage.prompt_tokens += event.usage.prompt_tokens
        state.usage.completion_tokens += event.usage.completion_tokens
        state.usage.cost_usd = round(state.usage.cost_usd + event.usage.cost_usd, 6)
        state.usage.calls += event.usage.calls
        state.usage.estimated_tokens += event.usage.estimated_tokens
    return True


def _refuse(state: ProjectState, event: ev.Event, reason: str) -> None:
    state.findings.append(
        Finding(reason=f"{event.type} refused: {reason}", event_id=event.id, type=event.type,
                seq=event.seq)
    )


def _at(event: ev.Event) -> str:
    return event.at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise IllegalTransition(reason)


def _task(state: ProjectState, task_id: str, *allowed: TaskStatus) -> Task:
    task = state.tasks.get(task_id)
    _require(task is not None, f"unknown task '{task_id}'")
    assert task is not None
    if allowed:
        _require(
            task.status in allowed,
            f"task '{task_id}' is {task.status.value}, expected "
            + " or ".join(s.value for s in allowed),
        )
    return task


def _module(state: ProjectState, name: str) -> Module:
    module = state.modules.get(name)
    _require(module is not None, f"unknown module '{name}'")
    assert module is not None
    return module


_OPEN = (
    ProjectStatus.CREATED, ProjectStatus.SPEC_REVIEWED, ProjectStatus.PLANNING,
    ProjectStatus.CHARTERED, ProjectStatus.IN_PROGRESS, ProjectStatus.CHANGES_REQUESTED,
)
_BEFORE_CHARTER = (ProjectStatus.CREATED, ProjectStatus.SPEC_REVIEWED, ProjectStatus.PLANNING)


def _project_in(state: ProjectState, *allowed: ProjectStatus) -> None:
    _require(state.status in allowed, f"project is {state.status.value}")


@singledispatch
def _apply(payload: ev.Payload, event: ev.Event, state: ProjectState) -> None:
    raise IllegalTransition(f"no fold rule for {event.type}")


@_apply.register
def _(p: ev.ProjectCreated, e: ev.Event, s: ProjectState) -> None:
    _require(not s.created_event, "project already created")
    s.created_event = e.id
    s.request_id = e.request_id
    s.spec_ref = f"{p.spec_path}@{p.spec_commit}" if p.spec_path else ""
    s.spec_path, s.spec_commit = p.spec_path, p.spec_commit
    s.title, s.author = p.title, p.author


@_apply.register
def _(p: ev.SpecReviewed, e: ev.Event, s: ProjectState) -> None:
    if s.status == ProjectStatus.CHANGES_REQUESTED:
        # A change round reviews the spec as committed now; the round stays open for replanning.
        _require(p.round == s.round, f"spec review of round {p.round} in round {s.round}")
        _require(s.spec_review_round < s.round, f"round {s.round} spec already reviewed")
    else:
        _project_in(s, ProjectStatus.CREATED, ProjectStatus.SPEC_REVIEWED)
        s.status = ProjectStatus.SPEC_REVIEWED
    s.spec_review_round, s.spec_review_event = s.round, e.id
    s.ids_assigned = p.ids_assigned
    s.round_changes = {"added": list(p.added), "changed": list(p.changed),
                       "removed": list(p.removed)}
    s.requirements = list(p.requirements) or [d.id for d in p.details]
    s.requirement_details = {d.id: {"area": d.area, "text": d.text} for d in p.details}


@_apply.register
def _(p: ev.CtoEngineerRequest, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_BEFORE_CHARTER)
    _require(p.round >= s.review_round, f"round {p.round} after round {s.review_round}")
    s.status, s.review_round, s.last_review_event = ProjectStatus.PLANNING, p.round, e.id
    s.last_review_type, s.last_questions = e.type, list(p.questions)


@_apply.register
def _(p: ev.EngineerCtoResponse, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_BEFORE_CHARTER)
    s.status, s.last_review_event, s.last_review_type = ProjectStatus.PLANNING, e.id, e.type
    s.proposed_squads = [sq.model_dump() for sq in p.squads]


@_apply.register
def _(p: ev.CharterCreated, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_BEFORE_CHARTER)
    s.status, s.charter_event = ProjectStatus.CHARTERED, e.id
    s.charter_squads = [sq.model_dump() for sq in p.squads] or list(s.proposed_squads)


@_apply.register
def _(p: ev.ModulePlanned, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_OPEN)
    existing = s.modules.get(p.module)
    if existing is not None:
        _require(
            s.round > existing.round and existing.status in MODULE_DONE,
            f"module '{p.module}' already planned",
        )
    if existing is not None:  # a change round: the squad's scope as planned now
        for sq in s.charter_squads:
            if sq.get("name") == p.module:
                sq["requirements"] = list(p.requirements)
    s.modules[p.module] = Module(
        name=p.module, depends_on=list(p.depends_on), scope=p.scope,
        requirements=list(p.requirements), planned_event=e.id, round=s.round,
        last_event=e.id,
    )
    s.status = ProjectStatus.IN_PROGRESS


@_apply.register
def _(p: ev.TaskAssigned, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_OPEN)
    task = s.tasks.get(p.task_id)
    if task is None:
        _require(p.reason in ("new", "fix", "changes"), f"unknown task '{p.task_id}'")
        module = p.module or (s.tasks[p.parent].module if p.parent in s.tasks else "")
        _require(bool(module), "a new task needs a module")
        if p.parent:
            _task(s, p.parent)
        if module not in s.modules:
            # A spec-less log may assign before planning: the squad appears with its first task.
            s.modules[module] = Module(name=module, planned_event=e.id, round=s.round)
        mod = s.modules[module]
        _require(mod.status not in MODULE_DONE or s.round > mod.round or p.reason == "fix",
                 f"module '{module}' is {mod.status.value}")
        if p.fixes_block:
            block = s.blocks.get(p.fixes_block)
            _require(block is not None and block.status == "open",
                     f"block '{p.fixes_block}' is not open")
            assert block is not None
            block.fix_task_id = p.task_id
        task = Task(
            id=p.task_id, module=module, owner_role=p.owner_role,
            requirements=list(p.requirements), depends_on=list(p.depends_on),
            parent=p.parent, title=p.title, fixes_block=p.fixes_block, round=s.round,
            reason=p.reason, brief=p.brief, expected_files=list(p.expected_files),
            depth=(s.tasks[p.parent].depth + 1) if p.parent else 0,
        )
        s.tasks[p.task_id] = task
        if p.parent:
            s.tasks[p.parent].subtasks.append(p.task_id)
        # A block fix in a squad that already reported leaves its report standing; the fix
        # has its own QA. Anything else (re)opens the squad.
        if mod.status not in MODULE_DONE or s.round > mod.round:
            mod.status = ModuleStatus.IN_PROGRESS
    elif task.status == TaskStatus.QA_FAILED:
        task.attempt += 1
        task.findings = list(p.findings) or task.findings
        task.review_event = task.approved_event = ""
    elif task.status == TaskStatus.BLOCKED:
        block = s.blocks.get(task.blocked_by)
        _require(block is None or block.status == "resolved",
                 f"task '{p.task_id}' is still blocked by '{task.blocked_by}'")
        task.blocked_by = ""
    elif task.status == TaskStatus.IN_PROGRESS and p.reason == "reactivated":
        # A stale claim handed back to the squad: a late result under it is fenced out.
        _revoke(s, claims.claim_key(f"dev.{task.module}", task.assigned_event), e)
    else:
        raise IllegalTransition(f"task '{p.task_id}' is {task.status.value}, cannot be assigned")
    task.status, task.reason = TaskStatus.ASSIGNED, p.reason
    task.brief = p.brief or task.brief
    task.assigned_event = task.last_event = e.id
    task.claimed_at, task.claimed_by, task.lease_s = "", "", 0
    if s.status in (ProjectStatus.CHARTERED, ProjectStatus.CHANGES_REQUESTED) or (
        s.status in _BEFORE_CHARTER
    ):
        s.status = ProjectStatus.IN_PROGRESS


@_apply.register
def _(p: ev.TaskStarted, e: ev.Event, s: ProjectState) -> None:
    """A Dev's claim of its task: the task moves, and the reaction is claimed like any other."""
    task = _task(s, p.task_id, TaskStatus.ASSIGNED)
    key = claims.claim_key(e.actor, e.causation_id) if e.causation_id else ""
    if key:
        reason = claims.claim_refusal(s, key, p.worker, "", e.at)
        _require(reason is None, str(reason))
        claims.record_claim(s, key, e, p.worker, p.lease_s)
    task.status, task.last_event = TaskStatus.IN_PROGRESS, e.id
    task.claimed_at, task.claimed_by, task.lease_s = _at(e), p.worker, p.lease_s


@_apply.register
def _(p: ev.ReactionClaimed, e: ev.Event, s: ProjectState) -> None:
    _require(e.causation_id is not None, "a claim names the event its reaction answers")
    key = claims.claim_key(e.actor, str(e.causation_id))
    reason = claims.claim_refusal(s, key, p.worker, p.takeover_of, e.at)
    _require(reason is None, str(reason))
    claims.record_claim(s, key, e, p.worker, p.lease_s)
    if e.actor.startswith("dev."):  # a Dev renewing the lease of the task it works on
        for task in s.tasks.values():
            if task.status == TaskStatus.IN_PROGRESS and task.assigned_event == e.causation_id \
                    and e.actor == f"dev.{task.module}":
                task.claimed_at, task.claimed_by, task.lease_s = _at(e), p.worker, p.lease_s


def _revoke(s: ProjectState, key: str, e: ev.Event) -> None:
    if key in s.claims and not s.claims[key].done:
        claims.record_claim(s, key, e, e.actor, 1)
        s.claims[key].done = True


@_apply.register
def _(p: ev.TaskDecomposed, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)
    task.status, task.last_event = TaskStatus.DECOMPOSED, e.id


@_apply.register
def _(p: ev.TaskCompleted, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS, TaskStatus.DECOMPOSED)
    if task.status == TaskStatus.DECOMPOSED:
        open_subtasks = [t for t in task.subtasks if s.tasks[t].status not in TASK_DONE]
        _require(not open_subtasks, f"subtasks still open: {', '.join(open_subtasks)}")
    task.status, task.last_event = TaskStatus.COMPLETED, e.id
    task.artifacts = list(p.artifacts)
    if p.branch:
        task.branch, task.head = p.branch, p.head
    if s.failing:
        failures.resolve_task(s, task.id)


@_apply.register
def _(p: ev.QaRequested, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.COMPLETED)
    task.status, task.last_event = TaskStatus.IN_QA, e.id


@_apply.register
def _(p: ev.QaPassed, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.COMPLETED, TaskStatus.IN_QA)
    # Work on a branch is not done until the branch is merged: it waits in review.
    passed = TaskStatus.IN_REVIEW if task.branch else TaskStatus.PASSED
    task.status, task.last_event, task.findings = passed, e.id, []


@_apply.register
def _(p: ev.QaFailed, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.COMPLETED, TaskStatus.IN_QA)
    task.status, task.last_event, task.findings = TaskStatus.QA_FAILED, e.id, list(p.findings)


@_apply.register
def _(p: ev.MonitorAlert, e: ev.Event, s: ProjectState) -> None:
    if p.kind == "rework_exhausted" and p.task_id:
        task = _task(s, p.task_id, TaskStatus.QA_FAILED)
        task.status, task.last_event = TaskStatus.REWORK_EXHAUSTED, e.id
        if s.failing:
            failures.end_task(s, p.task_id)
    elif p.kind == "stale_claim" and p.task_id:
        task = _task(s, p.task_id, TaskStatus.IN_PROGRESS)
        task.last_event = e.id
    elif p.kind in TASK_FAILING_ALERTS and p.task_id:
        # A Dev answer that could not be used counts as a failed attempt: the Monitor's
        # bounded rework applies, so a model that keeps answering garbage cannot loop.
        task = _task(s, p.task_id, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)
        task.status, task.last_event, task.findings = TaskStatus.QA_FAILED, e.id, [p.message]
    s.alerts.append(Alert(event_id=e.id, kind=p.kind, message=p.message, severity=p.severity,
                          task_id=p.task_id, module=p.module, at=_at(e), reaction=p.reaction,
                          attempt=p.attempt))
    if p.reaction_actor and e.causation_id:
        failures.record_failure(s, len(s.alerts) - 1, p.reaction_actor, e.causation_id,
                                p.reaction, p.attempt, p.max_failures)
    if p.severity == "error" or p.kind == "rework_exhausted":
        s.notices.append(Notice(event_id=e.id, kind=p.kind, message=p.message, at=_at(e)))


@_apply.register
def _(p: ev.DevopsRequested, e: ev.Event, s: ProjectState) -> None:
    mod = _module(s, p.module)
    _require(mod.status in (ModuleStatus.PLANNED, ModuleStatus.IN_PROGRESS),
             f"module '{p.module}' is {mod.status.value}")
    _require_all_passed(s, p.module)
    mod.status, mod.last_event = ModuleStatus.DEPLOYING, e.id


@_apply.register
def _(p: ev.DevopsDeployed, e: ev.Event, s: ProjectState) -> None:
    mod = _module(s, p.module)
    _require(mod.status in (ModuleStatus.PLANNED, ModuleStatus.IN_PROGRESS,
                            ModuleStatus.DEPLOYING),
             f"module '{p.module}' is {mod.status.value}")
    _require_all_passed(s, p.module)
    mod.status, mod.bundle, mod.last_event = ModuleStatus.DEPLOYED, p.bundle, e.id
    mod.smoke_failed = [t.name for t in p.smoke_tests if not t.passed]


def _require_all_passed(s: ProjectState, module: str) -> None:
    tasks = s.module_tasks(module, s.modules[module].round)
    exhausted = [t.id for t in tasks if t.status in TASK_FAILED]
    _require(not exhausted, f"module '{module}' has rework-exhausted tasks: {', '.join(exhausted)}")
    open_tasks = [t.id for t in tasks if t.status != TaskStatus.PASSED]
    _require(not open_tasks, f"module '{module}' has tasks not passed: {', '.join(open_tasks)}")


@_apply.register
def _(p: ev.ModuleCompleted, e: ev.Event, s: ProjectState) -> None:
    mod = _module(s, p.module)
    _require(mod.status not in MODULE_DONE, f"module '{p.module}' is {mod.status.value}")
    if p.outcome == "delivered":
        _require(mod.status == ModuleStatus.DEPLOYED, f"module '{p.module}' is not deployed")
        mod.status = ModuleStatus.COMPLETED
    else:
        mod.status = ModuleStatus.FAILED
    mod.report, mod.last_event = p.report, e.id


@_apply.register
def _(p: ev.BlockReported, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_OPEN)
    _require(p.block_id not in s.blocks, f"block '{p.block_id}' already reported")
    if p.task_id:
        task = _task(s, p.task_id, TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS)
        task.status, task.blocked_by, task.last_event = TaskStatus.BLOCKED, p.block_id, e.id
    s.blocks[p.block_id] = Block(
        id=p.block_id, task_id=p.task_id, reported_by=p.reported_by or e.squad,
        responsible_squad=p.responsible_squad, description=p.description, reported_event=e.id,
    )
    s.notices.append(Notice(event_id=e.id, kind="block",
                            message=f"{p.block_id}: {p.description}", at=_at(e)))


@_apply.register
def _(p: ev.BlockResolved, e: ev.Event, s: ProjectState) -> None:
    block = s.blocks.get(p.block_id)
    _require(block is not None, f"unknown block '{p.block_id}'")
    assert block is not None
    _require(block.status == "open", f"block '{p.block_id}' is already resolved")
    block.status, block.resolved_event = "resolved", e.id
    block.fix_task_id = p.fix_task_id or block.fix_task_id
    s.notices.append(Notice(event_id=e.id, kind="block_resolved",
                            message=f"{p.block_id}: {p.resolution}", at=_at(e)))


@_apply.register
def _(p: ev.DependencyRequest, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_OPEN)
    _require(p.dependency_id not in s.dependencies,
             f"dependency '{p.dependency_id}' already requested")
    s.dependencies[p.dependency_id] = Dependency(
        id=p.dependency_id, from_squad=p.from_squad or e.squad, to_squad=p.to_squad,
        need=p.need, task_id=p.task_id, requested_event=e.id,
    )


@_apply.register
def _(p: ev.DependencyFulfilled, e: ev.Event, s: ProjectState) -> None:
    dep = s.dependencies.get(p.dependency_id)
    _require(dep is not None, f"unknown dependency '{p.dependency_id}'")
    assert dep is not None
    _require(dep.status == "open", f"dependency '{p.dependency_id}' is already fulfilled")
    dep.status, dep.answer = "fulfilled", p.answer


@_apply.register
def _(p: ev.ProjectCompleted, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, *_OPEN)
    busy = [m.name for m in s.modules.values()
            if m.round == s.round and m.status not in MODULE_DONE]
    _require(not busy, f"modules not completed: {', '.join(sorted(busy))}")
    s.status = ProjectStatus.COMPLETED
    s.notices.append(Notice(event_id=e.id, kind="completed",
                            message=p.summary or "project completed", at=_at(e)))


@_apply.register
def _(p: ev.ReactionRetried, e: ev.Event, s: ProjectState) -> None:
    failures.retry(s, list(p.reactions))


@_apply.register
def _(p: ev.ProjectAccepted, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, ProjectStatus.COMPLETED)
    s.status = ProjectStatus.ACCEPTED


@_apply.register
def _(p: ev.ProjectChangesRequested, e: ev.Event, s: ProjectState) -> None:
    _project_in(s, ProjectStatus.COMPLETED)
    s.status, s.changes_event = ProjectStatus.CHANGES_REQUESTED, e.id
    s.request_id = e.request_id  # the new round is a chain of its own
    if p.spec_commit and s.spec_path:  # the round builds the spec as committed when asked
        s.spec_commit = p.spec_commit
        s.spec_ref = f"{s.spec_path}@{p.spec_commit}"
    s.change_requests.append(p.message)
    s.round, s.round_events = s.round + 1, 0


@_apply.register
def _(p: ev.ProjectCancelled, e: ev.Event, s: ProjectState) -> None:
    _require(s.status not in (ProjectStatus.ACCEPTED, ProjectStatus.CANCELLED),
             f"project is {s.status.value}")
    s.status, s.cancel_reason = ProjectStatus.CANCELLED, p.reason
    s.notices.append(Notice(event_id=e.id, kind="cancelled", message=p.reason, at=_at(e)))


# Review's rules (a branch waiting, approved, rejected, merged; its pull request) register on
# the same fold.
from orchestrator.core import fold_pulls as _fold_pulls  # noqa: E402, F401
from orchestrator.core import fold_review as _fold_review  # noqa: E402, F401
