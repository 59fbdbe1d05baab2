"""The rules of `orch apply` on plain lists of events: forged claims refused, what another
worker did or claimed since the plan began dropped with what depends on it, in-flight claims
found, lanes of independent work, the sweep cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.agents.base import AgentContext
from orchestrator.agents.team import perform
from orchestrator.core import events as ev
from orchestrator.core.bundle_rules import RuleBroken, check_project, in_flight_claims
from orchestrator.core.flow import FlowSettings, pending_reactions
from orchestrator.core.fold import fold_project
from orchestrator.core.lanes import Lane, next_sweep, plan_lanes
from orchestrator.core.state import ProjectState
from orchestrator.runtime.prompts import load_prompt
from tests.unit.test_claims import claimed, created, make, reviewed

SETTINGS = FlowSettings()


def base_with_project() -> tuple[ProjectState, str]:
    p = created()
    return fold_project("p1", [p]), p.id


def test_a_plans_own_claim_and_result_are_kept() -> None:
    base, cause = base_with_project()
    c = claimed(2, "w-plan", cause)
    verdict = check_project([c, reviewed(3, cause, c.id)], base, base, set(), SETTINGS,
                            "w-plan")
    assert [e.type for e in verdict.kept] == ["reaction.claimed", "spec.reviewed"]
    assert verdict.dropped == [] and verdict.state is not None
    assert verdict.state.status.value == "spec_reviewed"


def test_a_claim_made_for_another_worker_is_forged() -> None:
    base, cause = base_with_project()
    c = claimed(2, "w-someone-else", cause)
    with pytest.raises(RuleBroken, match="forged claim: it claims for worker 'w-someone-else'"):
        check_project([c, reviewed(3, cause, c.id)], base, base, set(), SETTINGS, "w-plan")


def test_a_result_under_a_claim_that_is_not_the_bundles_own_is_forged() -> None:
    p = created()
    theirs = claimed(2, "w-other", p.id)
    base = fold_project("p1", [p, theirs])  # the remote holds another worker's claim
    with pytest.raises(RuleBroken, match="forged claim: its claim .* is not one of the"):
        check_project([reviewed(3, p.id, theirs.id)], base, base, set(), SETTINGS, "w-plan")
    nowhere = reviewed(3, p.id, "01JNOTACLAIMANYWHERE000000")
    with pytest.raises(RuleBroken, match="forged claim"):
        check_project([nowhere], base, base, set(), SETTINGS, "w-plan")


def test_a_result_under_the_workers_current_claim_in_the_log_is_not_forged() -> None:
    p = created()
    mine = claimed(2, "w-plan", p.id)
    base = fold_project("p1", [p, mine])  # a claim of this worker applied by an earlier run
    verdict = check_project([reviewed(3, p.id, mine.id)], base, base, set(), SETTINGS,
                            "w-plan")
    assert len(verdict.kept) == 1


def test_an_event_whose_reaction_was_not_pending_when_planned_is_refused() -> None:
    p = created()
    c = claimed(2, "w-a", p.id)
    base = fold_project("p1", [p, c, reviewed(3, p.id, c.id)])  # reviewed already
    again = claimed(4, "w-plan", p.id)
    with pytest.raises(RuleBroken, match="not a reaction the log was waiting for"):
        check_project([again], base, base, set(), SETTINGS, "w-plan")


def test_an_event_naming_no_causation_is_refused_unless_the_author_asked_for_it() -> None:
    base, _ = base_with_project()
    accepted = make("project.accepted", 2, actor="spec")
    with pytest.raises(RuleBroken, match="names no causation"):
        check_project([accepted], base, base, set(), SETTINGS, "w-plan")


def test_work_another_worker_claimed_since_the_plan_is_dropped_with_its_result() -> None:
    base, cause = base_with_project()
    theirs = claimed(2, "w-other", cause)
    now = fold_project("p1", [created_again(cause), theirs])
    mine = claimed(2, "w-plan", cause)
    result = reviewed(3, cause, mine.id)
    verdict = check_project([mine, result], base, now, set(), SETTINGS, "w-plan")
    assert verdict.kept == []
    assert len(verdict.dropped) == 2
    assert "duplicate reaction of cto" in verdict.dropped[0]
    assert f"it answers {mine.id}, which was dropped" in verdict.dropped[1]


def test_work_another_worker_finished_since_the_plan_is_dropped() -> None:
    base, cause = base_with_project()
    theirs = claimed(2, "w-other", cause)
    now = fold_project("p1", [created_again(cause), theirs, reviewed(3, cause, theirs.id)])
    mine = claimed(2, "w-plan", cause)
    verdict = check_project([mine, reviewed(3, cause, mine.id)], base, now, set(), SETTINGS,
                            "w-plan")
    assert verdict.kept == [] and "did this reaction since the plan began" in \
        verdict.dropped[0]


def test_events_the_log_holds_already_are_counted_not_written_again() -> None:
    base, cause = base_with_project()
    c = claimed(2, "w-plan", cause)
    r = reviewed(3, cause, c.id)
    now = fold_project("p1", [created_again(cause), c, r])
    verdict = check_project([c, r], base, now, {c.id, r.id}, SETTINGS, "w-plan")
    assert verdict.kept == [] and verdict.already == 2 and verdict.dropped == []


def created_again(project_created_id: str) -> object:
    """The same project.created event (the log at base and now share it)."""
    return make_with_id("project.created", 1, project_created_id, spec_path="specs/a.md")


def make_with_id(type_name: str, seq: int, event_id: str, **payload: object) -> object:
    event = make(type_name, seq, **payload)  # type: ignore[arg-type]
    return event.model_copy(update={"id": event_id})


def test_claims_of_work_still_in_flight_are_found() -> None:
    p = created()
    done = claimed(2, "w-plan", p.id)
    result = reviewed(3, p.id, done.id)
    flying = make("reaction.claimed", 4, actor="pm.api", causation=result.id,
                  worker="w-plan", kind="plan_backlog")
    failed = make("reaction.claimed", 5, actor="pm.web", causation=result.id,
                  worker="w-plan", kind="plan_backlog")
    alert = make("monitor.alert", 6, actor="monitor.web", causation=result.id,
                 kind="invalid_output", reaction_actor="pm.web", reaction="plan_backlog:web")
    assert in_flight_claims([p, done, result, flying, failed, alert]) == {flying.id}


def test_a_new_spec_and_a_project_with_work_of_its_own_are_one_lane_each() -> None:
    p = created()
    state = fold_project("p1", [p])
    lanes = plan_lanes({"p1": state}, SETTINGS, {"p2": "specs/p2.md"})
    assert [lane.name for lane in lanes] == ["p2", "p1"]
    assert lanes[0].spec == "specs/p2.md"
    assert Lane("p1", "api").as_dict() == {"lane": "p1.api", "project": "p1", "squad": "api",
                                           "spec": ""}


def test_work_held_by_a_live_claim_of_another_worker_is_nobodys_lane() -> None:
    p = created()
    held = claimed(2, "w-other", p.id, lease_s=600, at_s=2)
    state = fold_project("p1", [p, held])
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert plan_lanes({"p1": state}, FlowSettings(now=at + timedelta(seconds=60))) == []
    later = FlowSettings(now=at + timedelta(seconds=700))  # the lease ran out: take it over
    assert [lane.name for lane in plan_lanes({"p1": state}, later)] == ["p1"]


def test_the_next_sweep_is_started_while_work_is_left_up_to_the_daily_cap() -> None:
    lanes = [Lane("p1")]
    assert next_sweep(lanes, 3, 48)[0]
    due, why = next_sweep(lanes, 48, 48)
    assert not due and "max_sweeps_per_day" in why
    assert next_sweep([], 0, 48) == (False, "no work is left that a new run could do")


def _example_run() -> tuple[list[list[Lane]], list[ev.Event], list[int]]:
    """The example project run in memory one reaction at a time: the lanes before each
    step, the log, and where each reaction's events begin (a plan commits them together)."""
    from tests.unit.test_flow import MemoryRun, config

    run = MemoryRun(config())
    settings = FlowSettings(worker="w")
    lanes_seen: list[list[Lane]] = []
    starts: list[int] = []
    for _ in range(2000):
        reactions = pending_reactions(run.state, settings)
        if not reactions:
            break
        lanes = plan_lanes({"p": run.state}, settings)
        squads = {r.squad for r in reactions}
        if len(lanes) > 1:
            assert "" not in squads and [lane.squad for lane in lanes] == sorted(squads)
        else:
            assert lanes == [Lane("p")]
        lanes_seen.append(lanes)
        ctx = AgentContext(project="task-tracker", state=run.state, config=run.config,
                           provider=run.provider, read_text=run.files.get, prompt=load_prompt)
        out = perform(ctx, reactions[0])
        run.files.update({k: v.decode() for k, v in out.files.items()})
        starts.append(len(run.log))
        run.append(out.events)
    assert run.state.status.value == "completed"
    return lanes_seen, run.log, starts


def test_lanes_split_a_project_by_squad_once_only_squads_have_work() -> None:
    lanes_seen, _, _ = _example_run()
    assert any(len(lanes) > 1 for lanes in lanes_seen)  # its squads planned in parallel


def test_any_tail_of_a_real_log_planned_from_its_head_is_kept_whole() -> None:
    """Cut the example's whole log between any two reactions: what follows, as a bundle
    planned from the log before the cut, is legitimate, including reactions whose causation
    is a logged event that only the bundle's own events made pending (a parent task
    consolidated once the bundle's subtasks passed)."""
    _, log, starts = _example_run()
    assert any(e.type == "task.completed" and e.actor.startswith("pm.") for e in log)
    for cut in starts[1:]:
        base = fold_project("p", log[:cut])
        verdict = check_project(log[cut:], base, base, set(), SETTINGS, "")
        assert verdict.dropped == [] and len(verdict.kept) == len(log) - cut, cut
