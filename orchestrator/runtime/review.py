"""Review of task branches, below the CLI and the GitHub side alike: what waits, and a
person's approval, rejection or abandonment, each recorded as events (and, for an approval
orch merges itself, as the merge commit that carries them).

The API (every function takes the Workspace; `project`/`task` are ids):

    task_branch(project: str, task: str) -> str
    waiting(ws: Workspace, project: str | None = None) -> list[ReviewItem]
    approve(ws: Workspace, project: str, task: str, *, by: str = "", note: str = "",
            source: "local" | "github" = "local", ref: str = "",
            merged: bool = False) -> Decision
    reject(ws: Workspace, project: str, task: str, findings: list[str], *, by: str = "",
           source: "local" | "github" = "local", ref: str = "") -> Decision
    abandon(ws: Workspace, project: str, task: str, *, by: str = "", reason: str = "",
            source: "local" | "github" = "local", ref: str = "") -> Decision

`approve` with `merged=False` merges the branch into the checked-out branch (one merge
commit holding `review.approved` and `task.merged`), or, when it conflicts, records the
approval with `merge.conflicted` (the task goes back to its Dev); `merged=True` (the host
merged it) records the approval only. Each deletes the branch once nothing on it is lost.
Every one raises UsageError (exit 2) when the task is not waiting in review.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from orchestrator.adapters.clock import new_ulid
from orchestrator.adapters.git_branch import MERGED_ELSEWHERE, MergeConflictError
from orchestrator.core import review_events as rv
from orchestrator.core.events import Event, NewEvent, Payload
from orchestrator.core.state import ProjectState, Task, TaskStatus
from orchestrator.errors import ProjectNotFoundError, UsageError
from orchestrator.runtime.workspace import Workspace

Source = Literal["local", "github"]
BRANCH_PREFIX = "orch"


def task_branch(project: str, task: str) -> str:
    """The branch a task's files are committed on."""
    return f"{BRANCH_PREFIX}/{project}/{task}"


@dataclass(frozen=True)
class ReviewItem:
    """A task whose branch waits for a person."""

    project: str
    task: str
    squad: str
    title: str
    branch: str
    head: str
    verdict: str
    """QA's verdict and report (`passed (project/p/squad/qa/t-attempt1.md)`)."""
    files: tuple[str, ...]
    lines_added: int
    lines_removed: int
    attempt: int
    approved: bool = False
    """Approved, and waiting for orch to merge it (a run does)."""


@dataclass
class Decision:
    """What a decision wrote: its events, and whether the branch was merged (and by whom)."""

    events: list[Event] = field(default_factory=list)
    merged: bool = False
    conflicts: tuple[str, ...] = ()
    branch_deleted: bool = False


def waiting(ws: Workspace, project: str | None = None) -> list[ReviewItem]:
    """Every task waiting in review, of one project or all, in project then task order."""
    projects = _projects(ws, project)
    items = []
    for pid, state in sorted(ws.reader.states(projects).items()):
        for task in sorted(state.tasks.values(), key=lambda t: t.id):
            if task.status != TaskStatus.IN_REVIEW:
                continue
            requested = _review_request(ws, pid, task)
            items.append(ReviewItem(
                project=pid, task=task.id, squad=task.module, title=task.title,
                branch=task.branch, head=task.head,
                verdict=f"passed ({_qa_report(ws, pid, task)})",
                files=tuple(requested.files) if requested else (),
                lines_added=requested.lines_added if requested else 0,
                lines_removed=requested.lines_removed if requested else 0,
                attempt=task.attempt, approved=bool(task.approved_event)))
    return items


def approve(ws: Workspace, project: str, task: str, *, by: str = "", note: str = "",
            source: Source = "local", ref: str = "", merged: bool = False) -> Decision:
    state, t = _in_review(ws, project, task)
    approval = rv.ReviewApproved(task_id=t.id, by=by, note=note, source=source, ref=ref,
                                 merged=merged)
    if merged:
        decision = Decision(events=_append(ws, state, [("spec", t.last_event, approval)]),
                            merged=True)
        decision.branch_deleted = _clean_up(ws, t, host_merged=True)
        return decision
    approval_id = new_ulid()
    first = _new(state, "spec", t.last_event, approval, approval_id)
    return merge_task(ws, state, t, f"monitor.{t.module}", approval_id, first=[first])


def reject(ws: Workspace, project: str, task: str, findings: list[str], *, by: str = "",
           source: Source = "local", ref: str = "") -> Decision:
    state, t = _in_review(ws, project, task)
    kept = [f.strip() for f in findings if f.strip()]
    if not kept:
        raise UsageError(f"rejecting {task} needs a message saying what to change (-m)")
    payload = rv.ReviewRejected(task_id=t.id, by=by, findings=kept, source=source, ref=ref)
    return Decision(events=_append(ws, state, [("spec", t.last_event, payload)]))


def abandon(ws: Workspace, project: str, task: str, *, by: str = "", reason: str = "",
            source: Source = "local", ref: str = "") -> Decision:
    state, t = _in_review(ws, project, task)
    payload = rv.ReviewAbandoned(task_id=t.id, by=by, reason=reason, source=source, ref=ref)
    decision = Decision(events=_append(ws, state, [("spec", t.last_event, payload)]))
    ws.repo.branches.park(t.branch)  # kept under refs/orch/abandoned/: never lost
    return decision


def merge_task(ws: Workspace, state: ProjectState, t: Task, actor: str, causation: str,
               first: list[NewEvent] | None = None) -> Decision:
    """Merge the task's branch into the checked-out branch with `task.merged` (after the
    events of `first`) in the merge commit; or, when it conflicts, `merge.conflicted`."""
    # The commit the log names is the one QA (or the person) reviewed: a clone's own branch
    # may be elsewhere (behind, when another clone did the last attempt).
    head = t.head or ws.repo.branches.head(t.branch)
    if not head:
        raise UsageError(f"task {t.id} has no branch {t.branch} to merge")
    before = list(first or [])
    ws.log.commit()  # what is staged lands first: the merge is checked against it
    main = ws.repo.head() or ""
    plan = ws.repo.branches.plan_merge(main, head)
    conflicts = plan.conflicts
    if not conflicts:
        merged = _new(state, actor, causation,
                      rv.TaskMerged(task_id=t.id, branch=t.branch, head=head,
                                    files=sorted(plan.changes)))
        try:
            events = ws.log.append(state.id, [*before, merged], merge=plan)
        except MergeConflictError as exc:  # the main branch moved in between
            conflicts = exc.paths
        else:
            deleted = ws.repo.branches.delete_merged(t.branch, head)
            return Decision(events=events, merged=True, branch_deleted=deleted)
    conflicted = _new(state, actor, causation, rv.MergeConflicted(
        task_id=t.id, branch=t.branch, head=head, main=main, paths=list(conflicts)))
    return Decision(events=ws.log.append(state.id, [*before, conflicted]),
                    conflicts=conflicts)


def request_review(ws: Workspace, state: ProjectState, t: Task, actor: str,
                   causation: str) -> list[NewEvent]:
    """The task's branch put up for a person: what it changes against the main branch."""
    head = t.head or ws.repo.branches.head(t.branch) or ""  # the commit QA passed
    main = ws.repo.head() or ""
    stat = ws.repo.branches.stat(main, head) if head and main else None
    return [_new(state, actor, causation, rv.ReviewRequested(
        task_id=t.id, branch=t.branch, head=head, files=list(stat.files) if stat else [],
        lines_added=stat.added if stat else 0, lines_removed=stat.removed if stat else 0))]


def reviewer(ws: Workspace) -> str:
    """Who decides locally: the repository's git identity, as `git commit` would name it."""
    return ws.repo.config("user.name") or os.environ.get("GIT_AUTHOR_NAME", "") or "spec"


# -- below -------------------------------------------------------------------------------------


def _projects(ws: Workspace, project: str | None) -> list[str]:
    known = ws.reader.projects()
    if project is None:
        return known
    if project not in known:
        raise ProjectNotFoundError(f"no project '{project}' in the log; 'orch status' lists them")
    return [project]


def _in_review(ws: Workspace, project: str, task: str) -> tuple[ProjectState, Task]:
    state = ws.reader.states(_projects(ws, project))[project]
    t = state.tasks.get(task)
    if t is None:
        raise UsageError(f"project '{project}' has no task '{task}'; 'orch review {project}' "
                         "lists what waits")
    if t.status != TaskStatus.IN_REVIEW:
        raise UsageError(f"task '{task}' of '{project}' is {t.status.value}, not in review; "
                         f"'orch review {project}' lists what waits")
    if t.approved_event:
        raise UsageError(f"task '{task}' of '{project}' is approved already; 'orch run' "
                         "merges it")
    return state, t


def _new(state: ProjectState, actor: str, causation: str, payload: Payload,
         event_id: str | None = None) -> NewEvent:
    return NewEvent(payload=payload, actor=actor, causation_id=causation or None,
                    request_id=state.request_id or None, id=event_id)


def _append(ws: Workspace, state: ProjectState,
            items: list[tuple[str, str, Payload]]) -> list[Event]:
    return ws.log.append(state.id, [_new(state, a, c, p) for a, c, p in items])


def _clean_up(ws: Workspace, t: Task, *, host_merged: bool) -> bool:
    """Delete the merged branch. A branch the host merged by squash or rebase is not an
    ancestor here: its commits are kept under refs/orch/merged/ rather than lost."""
    head = ws.repo.branches.head(t.branch)
    if head is None:
        return False
    if ws.repo.branches.delete(t.branch, head):
        return True
    if host_merged:
        return ws.repo.branches.park(t.branch, MERGED_ELSEWHERE) is not None
    return False


def _review_request(ws: Workspace, project: str, t: Task) -> rv.ReviewRequested | None:
    if not t.review_event:
        return None
    for event in reversed(ws.reader.events(project)):
        if event.id == t.review_event and isinstance(event.payload, rv.ReviewRequested):
            return event.payload
    return None


def _qa_report(ws: Workspace, project: str, t: Task) -> str:
    for event in reversed(ws.reader.events(project)):
        if event.type == "qa.passed" and event.payload.subject() == t.id:
            return str(getattr(event.payload, "report", "")) or "no report"
    return "no report"
