"""Reactions that failed closed: each failure its own alert, the latest one current, a bound of
K failures after which a reaction waits for a person (`orch retry`), never for a schedule."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.state import FailingReaction, ProjectState, TaskStatus, failing_key

TASK_FAILING_ALERTS = frozenset({"invalid_output", "path_refused"})
"""Failures that count as a failed attempt of the task: a Dev's unusable answer."""
ALERT_KINDS = frozenset({"invalid_output", "path_refused", "provider_error", "budget_exceeded"})
"""The kinds of failure an alert names as such; any other is `other`."""

NOT_RESOLVING = frozenset({"monitor.alert", "task.started"})
"""Events with a reaction's (actor, causation) that are not its result: the alerts of its
failures and the claim the runtime writes before the work starts."""


def record_failure(state: ProjectState, alert_index: int, actor: str, causation: str,
                   reaction: str, attempt: int, limit: int) -> None:
    """A failure alert lands: it is the reaction's current reason, earlier ones superseded."""
    key = failing_key(actor, causation)
    failing = state.failing.setdefault(key, FailingReaction(actor, causation, reaction))
    for index in failing.alerts:
        if state.alerts[index].state == "current":
            state.alerts[index].state = "superseded"
    failing.alerts.append(alert_index)
    failing.failures += 1
    failing.attempts = max(failing.attempts + 1, attempt)
    failing.limit = limit


def resolve(state: ProjectState, actor: str, causation: str) -> None:
    """The reaction succeeded after all: its alerts are resolved, its count forgotten."""
    failing = state.failing.pop(failing_key(actor, causation), None)
    if failing is not None:
        for index in failing.alerts:
            state.alerts[index].state = "resolved"


def resolve_task(state: ProjectState, task_id: str) -> None:
    """A task completed: the failures of its earlier attempts (sent back as rework) are over."""
    for key, failing in list(state.failing.items()):
        if failing.reaction == f"work:{task_id}":
            resolve(state, failing.actor, failing.causation)
            state.failing.pop(key, None)


def end_task(state: ProjectState, task_id: str) -> None:
    """A task ended rework-exhausted: that alert says why now; its Dev's earlier failures are
    superseded, and no run will try them again (the flow sent them to rework already)."""
    for key, failing in list(state.failing.items()):
        if failing.reaction == f"work:{task_id}":
            for index in failing.alerts:
                if state.alerts[index].state == "current":
                    state.alerts[index].state = "superseded"
            del state.failing[key]


def retry(state: ProjectState, reactions: list[str]) -> None:
    """A person's `orch retry`: the named reactions (every one when empty) may run again."""
    for failing in state.failing.values():
        if not reactions or failing.reaction in reactions:
            failing.failures = 0


def failed_reactions(state: ProjectState) -> list[dict[str, object]]:
    """Every reaction whose latest attempt failed closed, with that attempt's reason: what
    `orch status` shows (the view is JSON: plain values)."""
    found: list[dict[str, object]] = []
    for failing in state.failing.values():
        latest = state.alerts[failing.alerts[-1]] if failing.alerts else None
        found.append({
            "reaction": failing.reaction, "actor": failing.actor,
            "attempts": failing.attempts, "failures": failing.failures,
            "reason": latest.message if latest else "", "waiting": failing.waiting})
    return found


@dataclass(frozen=True)
class FailureAlert:
    """What a reaction that failed closed leaves in the log, and what follows from it."""

    alert: ev.MonitorAlert
    waits: bool
    """This was the K-th failure: the reaction now waits for a person (`orch retry`)."""
    task_attempt: bool
    """It counts as a failed attempt of the task, which the Monitor takes from here."""


def failure_alert(state: ProjectState, r: Reaction, kind: str, reason: str,
                  max_failures: int) -> FailureAlert:
    """The alert of a failed reaction: role, task, reason and attempt named; only a Dev's
    unusable answer on a task still in its hands counts as a failed attempt of that task."""
    message = (" ".join(p for p in (r.actor, r.kind, r.subject) if p) + f": {reason}")[:1500]
    task = state.tasks.get(r.subject) if r.kind in ("work", "qa") else None
    if kind in TASK_FAILING_ALERTS and task and task.status not in (
            TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS):
        kind = "other"
    failing = state.failing.get(failing_key(r.actor, r.causation_id))
    alert = ev.MonitorAlert.model_validate({
        "kind": kind if kind in ALERT_KINDS else "other", "severity": "error",
        "message": message, "task_id": task.id if task else "", "module": r.squad,
        "notify": [f"pm.{r.squad}"] if r.squad else ["cto"],
        "reaction": r.label, "reaction_actor": r.actor,
        "attempt": (failing.attempts if failing else 0) + 1, "max_failures": max_failures})
    return FailureAlert(alert=alert,
                        waits=(failing.failures if failing else 0) + 1 >= max_failures,
                        task_attempt=bool(task) and kind in TASK_FAILING_ALERTS)
