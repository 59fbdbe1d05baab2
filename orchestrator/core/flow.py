"""The flow as data: which role reacts to what, as small pure deciders over a project's state.

`pending_reactions(state, settings)` is everything the flow calls for that the log does not
hold yet. A reaction is done once an event of one of its `outputs` types exists with its
(actor, causation): that is what makes a re-run after a crash do nothing twice. Reactions
with `events` are decided here in full (the Monitor's routing, hiring PMs, resolving a
block); the others name work for an agent of `actor`'s role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from orchestrator.core import events as ev
from orchestrator.core.state import (
    MODULE_DONE,
    TASK_DONE,
    TASK_FAILED,
    Module,
    ModuleStatus,
    ProjectState,
    ProjectStatus,
    Task,
    TaskStatus,
)


@dataclass(frozen=True)
class FlowSettings:
    max_review_rounds: int = 3
    max_qa_rework: int = 2
    loop_guard: int = 5000
    max_failures: int = 3
    """A reaction that failed closed this often waits for `orch retry`."""
    worker: str = ""
    now: datetime | None = None
    review_mode: Literal["auto", "human"] = "auto"
    """auto: a QA pass merges the task's branch; human: it waits for a person."""


GIT_WORK = frozenset({"merge", "request_review"})
"""Reactions the runtime does itself with git (no agent, no model call)."""


@dataclass(frozen=True)
class Reaction:
    kind: str
    actor: str
    causation_id: str
    outputs: tuple[str, ...]
    subject: str = ""
    events: tuple[ev.NewEvent, ...] = field(default=())

    @property
    def key(self) -> tuple[str, str]:
        return (self.actor, self.causation_id)

    @property
    def label(self) -> str:
        """How people name it (`orch retry P LABEL`): `kind`, or `kind:subject`."""
        return f"{self.kind}:{self.subject}" if self.subject else self.kind

    @property
    def squad(self) -> str:
        return self.actor.partition(".")[2]

    @property
    def is_agent_work(self) -> bool:
        return not self.events and self.kind not in GIT_WORK

    @property
    def is_git_work(self) -> bool:
        return self.kind in GIT_WORK

    def done_in(self, state: ProjectState) -> bool:
        return any(state.has_reacted(self.actor, self.causation_id, t) for t in self.outputs)


Decider = Callable[[ProjectState, FlowSettings], Iterator[Reaction]]
DECIDERS: list[Decider] = []


def decider(fn: Decider) -> Decider:
    DECIDERS.append(fn)
    return fn


def pending_reactions(state: ProjectState, settings: FlowSettings) -> list[Reaction]:
    """Every reaction the flow calls for that the log does not hold yet, in a stable order."""
    if state.status in (ProjectStatus.ACCEPTED, ProjectStatus.CANCELLED) or (
            not state.created_event):
        return []
    if state.round_events >= settings.loop_guard:
        return list(_loop_guard(state, settings))
    found: list[Reaction] = []
    for fn in DECIDERS:
        found.extend(r for r in fn(state, settings) if not r.done_in(state)
                     and (not state.failing
                          or state.failures_of(r.actor, r.causation_id) < settings.max_failures))
    return found


def _new(state: ProjectState, actor: str, causation: str, payload: ev.Payload) -> ev.NewEvent:
    return ev.NewEvent(payload=payload, actor=actor, causation_id=causation,
                       request_id=state.request_id or None)


def _pure(state: ProjectState, kind: str, actor: str, causation: str,
          *payloads: ev.Payload, subject: str = "") -> Reaction:
    return Reaction(kind=kind, actor=actor, causation_id=causation,
                    outputs=tuple({p.type_name: None for p in payloads}), subject=subject,
                    events=tuple(_new(state, actor, causation, p) for p in payloads))


def _work(kind: str, actor: str, causation: str, *outputs: str, subject: str = "") -> Reaction:
    return Reaction(kind=kind, actor=actor, causation_id=causation, outputs=outputs,
                    subject=subject)


def _loop_guard(state: ProjectState, settings: FlowSettings) -> Iterator[Reaction]:
    if not any(a.kind == "loop_guard" for a in state.alerts):
        yield _pure(state, "loop_guard", "monitor", state.last_id, ev.MonitorAlert(
            kind="loop_guard", severity="error",
            message=f"{state.round_events} events in round {state.round}, over the loop "
                    f"guard of {settings.loop_guard}: reactions stopped",
        ))


# -- spec review and the CTO <-> Engineer loop -----------------------------------------------


@decider
def review_spec(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    if s.status == ProjectStatus.CREATED:
        yield _work("review_spec", "cto", s.created_event, "spec.reviewed")
    elif s.status == ProjectStatus.CHANGES_REQUESTED and _needs_round_review(s):
        yield _work("review_spec", "cto", s.changes_event, "spec.reviewed")


def _needs_round_review(s: ProjectState) -> bool:
    """A change round reads the spec again (as committed now), unless there is none to read."""
    return bool(s.spec_path) and s.spec_review_round < s.round


@decider
def review_loop(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    if s.status != ProjectStatus.PLANNING:
        return
    if s.last_review_type == "cto.engineer.request":
        yield _work("propose", "engineer", s.last_review_event, "engineer.cto.response")
    elif s.last_review_type == "engineer.cto.response":
        yield _work("decide_proposal", "cto", s.last_review_event,
                    "charter.created", "cto.engineer.request")


@decider
def hire_pms(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    if s.status == ProjectStatus.CHARTERED and s.charter_squads:
        yield _pure(s, "hire_pms", "cto", s.charter_event, *(
            ev.ModulePlanned(module=sq["name"], scope=sq.get("scope", ""),
                             depends_on=list(sq.get("depends_on", [])),
                             requirements=list(sq.get("requirements", [])))
            for sq in s.charter_squads
        ))


@decider
def replan_changes(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    if s.status != ProjectStatus.CHANGES_REQUESTED or not s.charter_squads:
        return
    if _needs_round_review(s):
        return
    change = s.change_requests[-1] if s.change_requests else ""
    reviewed = s.spec_review_round == s.round
    notes = _change_notes(s) if reviewed else ""
    yield _pure(s, "replan_changes", "cto", s.spec_review_event if reviewed else s.changes_event,
                *(ev.ModulePlanned(module=sq["name"],
                                   scope=f"Round {s.round} change request: {change}\n\n"
                                         f"{notes}{sq.get('scope', '')}",
                                   depends_on=list(sq.get("depends_on", [])),
                                   requirements=reqs)
                  for sq, reqs in round_squads(s)))


def round_squads(s: ProjectState) -> list[tuple[dict[str, Any], list[str]]]:
    """Each squad with its requirements for this round: removed ones dropped, each added one
    given to the squad that holds requirements of its area (else named for it, else the
    first squad), so every requirement keeps exactly one squad."""
    removed = set(s.round_changes.get("removed", [])) if s.spec_review_round == s.round else set()
    current = set(s.requirements) if s.spec_review_round == s.round else None
    plan = [(sq, [r for r in sq.get("requirements", []) if r not in removed
                  and (current is None or r in current)]) for sq in s.charter_squads]
    owned = {r for _, reqs in plan for r in reqs}
    for rid in s.requirements if current is not None else []:
        if rid in owned:
            continue
        area = s.requirement_details.get(rid, {}).get("area", "")
        target = next((reqs for _, reqs in plan if any(
            s.requirement_details.get(x, {}).get("area") == area for x in reqs)), None)
        if target is None:
            target = next((reqs for sq, reqs in plan if area and area in sq["name"]), plan[0][1])
        target.append(rid)
        owned.add(rid)
    return plan


def _change_notes(s: ProjectState) -> str:
    lines = []
    for kind in ("added", "changed", "removed"):
        ids = s.round_changes.get(kind, [])
        if ids:
            lines.append(f"Requirements {kind} since the last round: " + "; ".join(
                f"{rid} {s.requirement_details.get(rid, {}).get('text', '')}".strip()
                for rid in ids))
    return "\n".join(lines) + "\n\n" if lines else ""


# -- squads: backlog, work, QA, rework ----------------------------------------------------------


@decider
def plan_backlogs(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for m in s.modules.values():
        if m.status == ModuleStatus.PLANNED and m.round == s.round:
            yield _work("plan_backlog", f"pm.{m.name}", m.planned_event, "task.assigned",
                        subject=m.name)


def task_ready(s: ProjectState, t: Task) -> bool:
    """A task may be worked once what it waits for is settled."""
    for dep in t.depends_on:
        other = s.tasks.get(dep)
        if other is not None and not task_settled(s, other):
            return False
    if t.reason != "fix":
        mod = s.modules.get(t.module)
        for name in mod.depends_on if mod else []:
            other_mod = s.modules.get(name)
            if other_mod is not None and other_mod.status not in (
                ModuleStatus.DEPLOYED, *MODULE_DONE
            ):
                return False
    # It waits for its squad's dependency requests that concern it (or the whole squad), so
    # what it is told of them does not depend on timing.
    return not any(d.status == "open" and d.from_squad == t.module and d.task_id in (t.id, "")
                   for d in s.dependencies.values())


def task_settled(s: ProjectState, t: Task) -> bool:
    if t.status in TASK_DONE:
        return True
    if t.status == TaskStatus.DECOMPOSED:
        subs = [s.tasks[x] for x in t.subtasks if x in s.tasks]
        return all(task_settled(s, x) for x in subs) and any(
            x.status in TASK_FAILED or _has_exhausted(s, x) for x in subs)
    return False


def _has_exhausted(s: ProjectState, t: Task) -> bool:
    return any(s.tasks[x].status in TASK_FAILED or _has_exhausted(s, s.tasks[x])
               for x in t.subtasks if x in s.tasks)


def _lease_expired(t: Task, now: datetime | None) -> bool:
    if now is None or not t.claimed_at:
        return False
    claimed = datetime.strptime(t.claimed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=now.tzinfo)
    return claimed + timedelta(seconds=t.lease_s) < now


@decider
def dev_work(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        mine = t.status == TaskStatus.IN_PROGRESS and t.claimed_by == cfg.worker
        if (t.status == TaskStatus.ASSIGNED and task_ready(s, t)) or mine:
            yield _work("work", f"dev.{t.module}", t.assigned_event,
                        "task.completed", "block.reported", "task.decomposed", subject=t.id)


@decider
def reclaim_stale(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        if (t.status == TaskStatus.IN_PROGRESS and t.claimed_by != cfg.worker
                and _lease_expired(t, cfg.now)):
            yield _pure(s, "reclaim_stale", f"monitor.{t.module}", t.last_event,
                        ev.MonitorAlert(kind="stale_claim", task_id=t.id, module=t.module,
                                        message=f"claim of {t.claimed_by or 'a worker'} on "
                                                f"{t.id} expired after {t.lease_s}s"),
                        ev.TaskAssigned(task_id=t.id, reason="reactivated"), subject=t.id)


@decider
def consolidate_subtasks(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        if t.status != TaskStatus.DECOMPOSED or not t.subtasks:
            continue
        subs = [s.tasks[x] for x in t.subtasks if x in s.tasks]
        if subs and all(x.status == TaskStatus.PASSED for x in subs):
            arts = sorted({a for x in subs for a in x.artifacts})
            yield _pure(s, "consolidate", f"pm.{t.module}", t.last_event, ev.TaskCompleted(
                task_id=t.id, artifacts=arts,
                result="Consolidated from subtasks " + ", ".join(x.id for x in subs)),
                subject=t.id)


@decider
def request_qa(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        if t.status == TaskStatus.COMPLETED:
            yield _pure(s, "request_qa", f"monitor.{t.module}", t.last_event,
                        ev.QaRequested(task_id=t.id), subject=t.id)


@decider
def qa_review(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        if t.status == TaskStatus.IN_QA:
            yield _work("qa", f"qa.{t.module}", t.last_event, "qa.passed", "qa.failed",
                        subject=t.id)


@decider
def after_qa_failed(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for t in s.tasks.values():
        if t.status != TaskStatus.QA_FAILED:
            continue
        actor = f"monitor.{t.module}"
        if t.attempt <= cfg.max_qa_rework:
            yield _pure(s, "rework", actor, t.last_event, ev.TaskAssigned(
                task_id=t.id, reason="rework", findings=list(t.findings), brief=t.brief,
                expected_files=list(t.expected_files)), subject=t.id)
        else:
            yield _pure(s, "rework_exhausted", actor, t.last_event, ev.MonitorAlert(
                kind="rework_exhausted", severity="error", task_id=t.id, module=t.module,
                notify=[f"pm.{t.module}"],
                message=f"{t.id} failed QA {t.attempt} times (max_qa_rework "
                        f"{cfg.max_qa_rework}); {t.module} will not be deployed"),
                subject=t.id)


@decider
def merge_or_review(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    """A passed task's branch is merged when QA's pass suffices (auto) or a person approved;
    otherwise it is put up for review once per attempt."""
    for t in s.tasks.values():
        if t.status != TaskStatus.IN_REVIEW:
            continue
        actor = f"monitor.{t.module}"
        if cfg.review_mode == "auto" or t.approved_event:
            yield _work("merge", actor, t.last_event, "task.merged", "merge.conflicted",
                        subject=t.id)
        elif not t.review_event:
            yield _work("request_review", actor, t.last_event, "review.requested",
                        subject=t.id)


# -- squads: deploy and report ---------------------------------------------------------------------


def squad_outcome(s: ProjectState, m: Module) -> Literal["delivered", "failed"]:
    """A squad failed when a task ended rework-exhausted or abandoned, or a smoke test failed."""
    exhausted = any(t.status in TASK_FAILED for t in _squad_tasks(s, m))
    return "failed" if exhausted or m.smoke_failed else "delivered"


def _squad_tasks(s: ProjectState, m: Module) -> list[Task]:
    return [t for t in s.tasks.values() if t.module == m.name and t.round >= m.round]


def _latest(ids: list[str]) -> str:
    return max(ids) if ids else ""


@decider
def deploy_and_report(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for m in s.modules.values():
        tasks = _squad_tasks(s, m)
        if m.status == ModuleStatus.IN_PROGRESS and tasks and all(
            task_settled(s, t) for t in tasks
        ):
            trigger = _latest([t.last_event for t in tasks])
            if any(t.status in TASK_FAILED for t in tasks):
                yield _work("squad_report", f"pm.{m.name}", trigger, "module.completed",
                            subject=m.name)
            else:
                yield _pure(s, "request_devops", f"monitor.{m.name}", trigger,
                            ev.DevopsRequested(module=m.name), subject=m.name)
        elif m.status == ModuleStatus.DEPLOYING:
            yield _work("deploy", f"devops.{m.name}", m.last_event, "devops.deployed",
                        subject=m.name)
        elif m.status == ModuleStatus.DEPLOYED:
            yield _work("squad_report", f"pm.{m.name}", m.last_event, "module.completed",
                        subject=m.name)


@decider
def final_report(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    if s.status not in (ProjectStatus.IN_PROGRESS,):
        return
    current = [m for m in s.modules.values() if m.round == s.round]
    if not current or any(m.status not in MODULE_DONE for m in s.modules.values()):
        return
    if any(b.status == "open" for b in s.blocks.values()):
        return
    if any(not task_settled(s, t) for t in s.tasks.values() if t.round == s.round):
        return
    yield _work("final_report", "cto", _latest([m.last_event for m in s.modules.values()]),
                "project.completed")


# -- blocks and dependency requests, always through the CTO ----------------------------------------


def block_allowed(s: ProjectState, task: Task, squad: str) -> bool:
    """A Dev may report its task blocked by another squad of the project, once per task; a
    fix task (the answer to a block) is never reported blocked again."""
    return (squad in s.modules and squad != task.module and task.reason != "fix"
            and not any(b.task_id == task.id for b in s.blocks.values()))


@decider
def handle_blocks(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for b in s.blocks.values():
        if b.status == "open" and not b.fix_task_id:
            squad = b.responsible_squad if b.responsible_squad in s.modules else (
                s.tasks[b.task_id].module if b.task_id in s.tasks else "")
            if squad:
                yield _work("fix_task", f"pm.{squad}", b.reported_event, "task.assigned",
                            subject=b.id)
        elif b.status == "open":
            fix = s.tasks.get(b.fix_task_id)
            if fix is not None and fix.status in TASK_DONE:
                outcome = "passed QA" if fix.status == TaskStatus.PASSED else "was abandoned"
                yield _pure(s, "resolve_block", "cto", fix.last_event, ev.BlockResolved(
                    block_id=b.id, fix_task_id=fix.id,
                    resolution=f"fix task {fix.id} of {fix.module} {outcome}"), subject=b.id)
        elif b.task_id in s.tasks and s.tasks[b.task_id].status == TaskStatus.BLOCKED:
            t = s.tasks[b.task_id]
            if t.blocked_by == b.id:
                yield _pure(s, "reactivate", f"monitor.{t.module}", b.resolved_event,
                            ev.TaskAssigned(task_id=t.id, reason="reactivated", brief=t.brief,
                                            expected_files=list(t.expected_files)),
                            subject=t.id)


@decider
def answer_dependencies(s: ProjectState, cfg: FlowSettings) -> Iterator[Reaction]:
    for d in s.dependencies.values():
        target = s.modules.get(d.to_squad)
        # The answer quotes the other squad's planned work: wait until it has a backlog.
        if d.status == "open" and (target is None or target.status != ModuleStatus.PLANNED):
            yield _work("answer_dependency", "cto", d.requested_event, "dependency.fulfilled",
                        subject=d.id)
