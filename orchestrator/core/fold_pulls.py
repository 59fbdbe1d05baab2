"""The fold's rule for a task's pull request: which pull request stands for which task.
Registered on the fold's dispatcher by fold.py."""

from __future__ import annotations

from orchestrator.core import events as ev
from orchestrator.core import pull_events as pe
from orchestrator.core.fold import _apply, _require, _task
from orchestrator.core.state import ProjectState


@_apply.register
def _(p: pe.PullOpened, e: ev.Event, s: ProjectState) -> None:
    _task(s, p.task_id)
    known = s.pulls.get(p.task_id)
    _require(known is None or known["number"] != p.number,
             f"task '{p.task_id}' has pull request #{p.number} already")
    s.pulls[p.task_id] = {"number": p.number, "url": p.url, "branch": p.branch, "event": e.id}
