"""Read models of the folded state: the JSON contract of `orch status --json`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from orchestrator.core.failures import failed_reactions
from orchestrator.core.state import Alert, Finding, ProjectState, Task, TaskStatus

_NEVER_RESOLVED = frozenset({"rework_exhausted", "loop_guard", "budget_exceeded"})


def project_view(state: ProjectState) -> dict[str, Any]:
    """One project as `orch status --json` prints it (keys may be added, never renamed)."""
    return {
        "id": state.id,
        "status": state.status.value,
        "title": state.title,
        "spec_ref": state.spec_ref,
        "round": state.round,
        "modules": [
            {"name": m.name, "status": m.status.value, "depends_on": m.depends_on,
             "round": m.round}
            for m in state.modules.values()
        ],
        "tasks": [
            {"id": t.id, "module": t.module, "owner_role": t.owner_role,
             "status": t.status.value, "attempt": t.attempt, "requirements": t.requirements,
             "parent": t.parent, "title": t.title}
            for t in _task_order(state)
        ],
        "blocks": [
            {"id": b.id, "reported_by": b.reported_by, "responsible_squad": b.responsible_squad,
             "description": b.description, "status": b.status, "task_id": b.task_id}
            for b in sorted(state.blocks.values(), key=lambda b: b.id)
        ],
        "dependencies": [
            {"id": d.id, "from_squad": d.from_squad, "to_squad": d.to_squad, "need": d.need,
             "status": d.status}
            for d in sorted(state.dependencies.values(), key=lambda d: d.id)
        ],
        "alerts": [
            {"event_id": a.event_id, "kind": a.kind, "message": a.message,
             "severity": a.severity, "task_id": a.task_id, "module": a.module, "at": a.at,
             "reaction": a.reaction, "attempt": a.attempt, "state": alert_state(state, a)}
            for a in state.alerts
        ],
        "failed_reactions": failed_reactions(state),
        "notices": [
            {"event_id": n.event_id, "kind": n.kind, "message": n.message, "at": n.at}
            for n in state.notices
        ],
        "usage": {
            "prompt_tokens": state.usage.prompt_tokens,
            "completion_tokens": state.usage.completion_tokens,
            "cost_usd": state.usage.cost_usd,
            "calls": state.usage.calls,
            "estimated_tokens": state.usage.estimated_tokens,
        },
        "claims": open_claims(state),
        "findings": [finding_view(f) for f in state.findings],
        **pulls_view(state),
        "events": state.events,
        "last_seq": state.last_seq,
    }


_TIME = "%Y-%m-%dT%H:%M:%SZ"


def open_claims(state: ProjectState) -> list[dict[str, Any]]:
    """Claims whose reaction has no result yet: which reaction, whose worker, until when
    (UTC, so that comparing the text compares the times)."""
    rows = []
    for key, c in state.claims.items():
        if c.done:
            continue
        actor, _, causation = key.partition(" ")
        until = datetime.strptime(c.at, _TIME) + timedelta(seconds=c.lease_s)
        rows.append({"reaction": f"{actor} on {causation}", "actor": actor,
                     "causation_id": causation, "worker": c.worker, "claim": c.event_id,
                     "claimed_at": c.at, "expires_at": until.strftime(_TIME)})
    return sorted(rows, key=lambda r: (r["expires_at"], r["claim"]))


def stale_claims(view: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The open claims of a project view whose lease ran out before `now`: a worker died or
    lost its way, and the reaction waits until the Monitor hands it back or another takes it."""
    at = now.strftime(_TIME)
    return [c for c in view.get("claims", []) if c["expires_at"] < at]


def pulls_view(state: ProjectState) -> dict[str, Any]:
    """The tasks' pull requests (review.host: github), and the tasks in review still without
    one: queued behind the cap on open pull requests (or until the next sync opens theirs)."""
    pulls = [{"task": task, "number": p["number"], "url": p["url"],
              "task_status": state.tasks[task].status.value}
             for task, p in sorted(state.pulls.items()) if task in state.tasks]
    queued = sorted(t.id for t in state.tasks.values()
                    if t.status == TaskStatus.IN_REVIEW and t.review_event
                    and t.id not in state.pulls) if state.pulls else []
    return {"pull_requests": pulls, "review_queue": queued}


def alert_state(state: ProjectState, alert: Alert) -> str:
    """The alert's state as the fold left it (current, superseded, resolved), and resolved
    too when what followed made it old news: its task passed QA after all (a stale claim,
    a failed deploy of a task's squad that was redone). Exhausted rework, a loop guard or a
    budget stays current: nothing that follows undoes them."""
    if alert.state != "current" or alert.kind in _NEVER_RESOLVED:
        return alert.state
    task = state.tasks.get(alert.task_id) if alert.task_id else None
    if task is not None and task.status == TaskStatus.PASSED:
        return "resolved"
    return alert.state


def _task_order(state: ProjectState) -> list[Task]:
    """By squad (in planning order), then by id read naturally (backend-2 before backend-10):
    the same for two runs whatever order parallel squads happened to write in."""
    squads = {name: i for i, name in enumerate(state.modules)}

    def key(t: Task) -> tuple[int, list[tuple[int, str]]]:
        parts = re.split(r"(\d+)", t.id)
        return squads.get(t.module, len(squads)), [
            (int(p), "") if p.isdigit() else (-1, p) for p in parts if p]

    return sorted(state.tasks.values(), key=key)


def finding_view(finding: Finding) -> dict[str, Any]:
    return {
        "path": finding.path, "line": finding.line, "event_id": finding.event_id,
        "type": finding.type, "reason": finding.reason, "message": finding.describe(),
    }
