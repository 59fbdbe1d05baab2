"""Reactions that failed closed: each failure its own alert, the latest one current, a bound of
K failures after which a reaction waits for a person (`orch retry`), never for a schedule."""

from __future__ import annotations

from orchestrator.core.state import FailingReaction, ProjectState, failing_key

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
