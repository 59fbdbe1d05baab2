"""Lanes: the independent parts of the pending work, which plan jobs do in parallel (the
workflow's matrix), and whether the workflow should start its next sweep (pure).

A project is one lane while it has work of its own (a spec review, the CTO's plan, the
integration) or work in at most one squad; once work is pending in several squads and none
at the project's level, each squad is a lane. A new spec is a lane of the project it starts.
Work another worker holds a live claim on is nobody's lane: no new worker could take it.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.claims import plan_claim
from orchestrator.core.flow import FlowSettings, Reaction, pending_reactions
from orchestrator.core.state import ProjectState


@dataclass(frozen=True)
class Lane:
    project: str
    squad: str = ""
    spec: str = ""
    """For a project not started yet: the spec that starts it."""

    @property
    def name(self) -> str:
        return f"{self.project}.{self.squad}" if self.squad else self.project

    def as_dict(self) -> dict[str, str]:
        return {"lane": self.name, "project": self.project, "squad": self.squad,
                "spec": self.spec}


def workable(state: ProjectState, settings: FlowSettings) -> list[Reaction]:
    """The pending reactions a new worker could start now."""
    found = []
    for r in pending_reactions(state, settings):
        if r.is_agent_work and settings.now is not None:
            plan = plan_claim(state, r.actor, r.causation_id, settings.worker, settings.now)
            if plan.action in ("held", "done"):
                continue
        found.append(r)
    return found


def plan_lanes(states: dict[str, ProjectState], settings: FlowSettings,
               new_specs: dict[str, str] | None = None) -> list[Lane]:
    """The lanes of the pending work; new_specs maps the project a spec would start to it."""
    lanes = [Lane(project, spec=spec) for project, spec in sorted((new_specs or {}).items())]
    for project, state in sorted(states.items()):
        reactions = workable(state, settings)
        if not reactions:
            continue
        squads = {r.squad for r in reactions}
        if "" in squads or len(squads) == 1:
            lanes.append(Lane(project))
        else:
            lanes.extend(Lane(project, squad) for squad in sorted(squads))
    return lanes


def next_sweep(lanes: list[Lane], started_today: int, max_per_day: int) -> tuple[bool, str]:
    """Whether the workflow starts another run itself, and why (or why not)."""
    if not lanes:
        return False, "no work is left that a new run could do"
    if started_today >= max_per_day:
        return False, (f"{started_today} run(s) started today, the most github."
                       f"max_sweeps_per_day allows ({max_per_day}); the schedule carries on")
    return True, (f"{len(lanes)} lane(s) of work left; run {started_today + 1} of at most "
                  f"{max_per_day} today")
