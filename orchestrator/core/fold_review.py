"""The fold's rules for review: a task whose work sits on its own branch goes from QA's pass
to in_review, and from there to passed (merged), back to its Dev (rejected or conflicting,
counted as rework), or to abandoned. Registered on the fold's dispatcher by fold.py."""

from __future__ import annotations

from orchestrator.core import events as ev
from orchestrator.core import review_events as rv
from orchestrator.core.fold import IllegalTransition, _apply, _at, _task
from orchestrator.core.state import Alert, Notice, ProjectState, TaskStatus


@_apply.register
def _(p: rv.ReviewRequested, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    if task.review_event:
        raise IllegalTransition(f"task '{p.task_id}' is already waiting for review")
    task.review_event, task.last_event = e.id, e.id
    task.head = p.head or task.head


@_apply.register
def _(p: rv.ReviewApproved, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    if task.approved_event:
        raise IllegalTransition(f"task '{p.task_id}' is already approved")
    task.last_event = e.id
    if p.merged:  # the host merged it: nothing is left for orch to merge
        task.status, task.merged, task.review_event = TaskStatus.PASSED, True, ""
    else:
        task.approved_event = e.id


@_apply.register
def _(p: rv.ReviewRejected, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    # The Monitor's bounded rework takes it from here, as after a failed QA.
    task.status, task.last_event, task.findings = TaskStatus.QA_FAILED, e.id, list(p.findings)
    task.conflicts = []


@_apply.register
def _(p: rv.ReviewAbandoned, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    task.status, task.last_event = TaskStatus.ABANDONED, e.id
    message = f"{task.id}: review abandoned" + (f" by {p.by}" if p.by else "") + (
        f": {p.reason}" if p.reason else "") + f"; {task.module} will not be deployed"
    s.alerts.append(Alert(event_id=e.id, kind="review_abandoned", message=message,
                          severity="error", task_id=task.id, module=task.module, at=_at(e)))
    s.notices.append(Notice(event_id=e.id, kind="review_abandoned", message=message,
                            at=_at(e)))


@_apply.register
def _(p: rv.TaskMerged, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    if p.branch and task.branch and p.branch != task.branch:
        raise IllegalTransition(f"task '{p.task_id}' has branch {task.branch}, not {p.branch}")
    task.status, task.last_event, task.merged = TaskStatus.PASSED, e.id, True
    task.review_event = task.approved_event = ""
    task.conflicts = []


@_apply.register
def _(p: rv.MergeConflicted, e: ev.Event, s: ProjectState) -> None:
    task = _task(s, p.task_id, TaskStatus.IN_REVIEW)
    task.status, task.last_event = TaskStatus.QA_FAILED, e.id
    task.conflicts = list(p.paths)
    branch = task.branch or "its branch"
    task.findings = [
        f"{path} conflicts with the main branch (changed there since {branch} was cut): "
        "write it again keeping both the main branch's content and this task's"
        for path in p.paths]
