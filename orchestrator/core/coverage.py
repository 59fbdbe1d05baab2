"""What became of each requirement in a round, read from the tasks that carry it: the facts a
report states about requirements (pure: a report never takes a model's word for them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.core.state import TASK_FAILED, ModuleStatus, ProjectState, TaskStatus


@dataclass(frozen=True)
class RequirementOutcome:
    id: str
    text: str
    squads: tuple[str, ...]
    tasks: tuple[str, ...]
    status: str
    """delivered | failed | in progress | no task"""


def requirement_outcomes(state: ProjectState, ids: Iterable[str] | None = None,
                         squad: str | None = None) -> list[RequirementOutcome]:
    """Each requirement (all of the project's, or `ids`) as its last round left it: delivered
    when a task carrying it passed QA in a squad that did not fail; otherwise why not (its
    squad failed, its tasks ran out of rework, still in progress, or no task carries it)."""
    wanted = list(ids) if ids is not None else list(state.requirements)
    mine = [t for t in state.tasks.values() if squad is None or t.module == squad]
    outcomes = []
    for rid in dict.fromkeys(wanted):
        # A change round carries only what changed: the rest stands as its last round left it.
        rounds = [t.round for t in mine if rid in t.requirements]
        last = max(rounds, default=state.round)
        carrying = [t for t in mine if rid in t.requirements and t.round == last]
        squads = tuple(dict.fromkeys(t.module for t in carrying))
        failed_squads = {m for m in squads if state.modules.get(m) is not None
                         and state.modules[m].status == ModuleStatus.FAILED}
        passed = [t for t in carrying if t.status == TaskStatus.PASSED]
        if not carrying:
            status = "no task"
        elif any(t.module not in failed_squads for t in passed):
            status = "delivered"
        elif passed:
            status = "passed QA, not delivered: squad failed"
        elif all(t.status in TASK_FAILED for t in carrying):
            status = "failed QA (rework exhausted)"
        elif failed_squads:
            status = "not delivered: squad failed"
        else:
            status = "in progress"
        if carrying and last != state.round:
            status = f"{status} in round {last}"
        text = state.requirement_details.get(rid, {}).get("text", "")
        outcomes.append(RequirementOutcome(rid, text, squads, tuple(t.id for t in carrying),
                                           status))
    return outcomes
