"""Claims and the fold's fence, on plain lists of events: races, takeovers, any file order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from orchestrator.core import events as ev
from orchestrator.core.claims import (
    ClaimPlan,
    active_workers,
    claim_events,
    claim_key,
    held_by_others,
    plan_claim,
    preferred_worker,
)
from orchestrator.core.flow import FlowSettings, Reaction, pending_reactions
from orchestrator.core.fold import fold_project
from orchestrator.core.state import Claim, ProjectState, ProjectStatus, TaskStatus
from tests.unit.test_fold import scripted_log

_ids = count(1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make(type_name: str, seq: int, actor: str | None = None, causation: str | None = None,
         claim: str = "", at_s: int | None = None, **payload: Any) -> ev.Event:
    model = ev.payload_model(type_name)
    links = (ev.Link(kind="claim", ref=claim),) if claim else ()
    return ev.Event(
        id=f"01J{next(_ids):023d}", seq=seq, type=type_name, project="p1", request_id="req",
        causation_id=causation, actor=actor or model.default_actor,
        at=T0 + timedelta(seconds=seq if at_s is None else at_s),
        payload=model.model_validate(payload), links=links)


def created() -> ev.Event:
    return make("project.created", 1, spec_path="specs/a.md")


def claimed(seq: int, worker: str, causation: str, takeover: str = "", lease_s: int = 60,
            at_s: int | None = None) -> ev.Event:
    return make("reaction.claimed", seq, actor="cto", causation=causation, at_s=at_s,
                worker=worker, lease_s=lease_s, takeover_of=takeover, kind="review_spec")


def reviewed(seq: int, causation: str, claim: str) -> ev.Event:
    return make("spec.reviewed", seq, actor="cto", causation=causation, claim=claim,
                requirements=["FR-1"])


def refused_ids(state: ProjectState) -> set[str]:
    return {f.event_id for f in state.findings}


def test_a_result_under_the_current_claim_is_kept() -> None:
    p = created()
    c = claimed(2, "w-a", p.id)
    state = fold_project("p1", [p, c, reviewed(3, p.id, c.id)])
    assert state.status == ProjectStatus.SPEC_REVIEWED and not state.findings
    assert state.claims[claim_key("cto", p.id)].done


def test_the_second_first_claim_loses_and_its_result_is_refused_in_any_file_order() -> None:
    p = created()
    a, b = claimed(2, "w-a", p.id), claimed(3, "w-b", p.id)
    ra, rb = reviewed(4, p.id, a.id), reviewed(5, p.id, b.id)
    events = [p, a, b, ra, rb]
    for _ in range(10):
        random.shuffle(events)
        state = fold_project("p1", events)
        assert refused_ids(state) == {b.id, rb.id}
        assert state.claims[claim_key("cto", p.id)].event_id == a.id


def test_a_result_pushed_after_a_takeover_is_refused() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=10, at_s=2)
    b = claimed(3, "w-b", p.id, takeover=a.id, at_s=20)
    late = reviewed(4, p.id, a.id)
    state = fold_project("p1", [late, b, a, p])
    assert refused_ids(state) == {late.id}
    assert "replaced by claim" in state.findings[0].reason
    assert state.status == ProjectStatus.CREATED
    ok = reviewed(5, p.id, b.id)
    assert fold_project("p1", [p, a, b, late, ok]).status == ProjectStatus.SPEC_REVIEWED


def test_a_takeover_before_the_lease_ran_out_is_refused() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=600, at_s=2)
    b = claimed(3, "w-b", p.id, takeover=a.id, at_s=30)
    state = fold_project("p1", [p, a, b, reviewed(4, p.id, a.id)])
    assert refused_ids(state) == {b.id}
    assert "holds until" in state.findings[0].reason
    assert state.status == ProjectStatus.SPEC_REVIEWED


def test_a_renewal_by_the_holder_keeps_its_results_fenced_to_the_new_claim() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=600)
    renewed = claimed(3, "w-a", p.id, takeover=a.id, lease_s=600)
    state = fold_project("p1", [p, a, renewed, reviewed(4, p.id, a.id)])
    assert len(state.findings) == 1 and "replaced" in state.findings[0].reason


def test_no_takeover_once_the_reaction_has_its_result() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=1, at_s=2)
    done = reviewed(3, p.id, a.id)
    b = claimed(4, "w-b", p.id, takeover=a.id, at_s=500)
    state = fold_project("p1", [p, a, done, b])
    assert refused_ids(state) == {b.id}


def test_a_result_whose_claim_never_landed_is_refused() -> None:
    p = created()
    state = fold_project("p1", [p, reviewed(2, p.id, "01J" + "9" * 23)])
    assert "not in the log" in state.findings[0].reason


def test_task_started_is_the_dev_claim_and_a_reactivation_fences_the_old_one() -> None:
    seq = count(1)
    p = make("project.created", next(seq))
    assigned = make("task.assigned", next(seq), actor="pm.api", causation=p.id, task_id="T1",
                    module="api")
    started = make("task.started", next(seq), actor="dev.api", causation=assigned.id,
                   task_id="T1", worker="w-a", lease_s=5)
    back = make("task.assigned", next(seq), actor="monitor.api", causation=started.id,
                task_id="T1", reason="reactivated")
    late = make("task.completed", next(seq), actor="dev.api", causation=assigned.id,
                claim=started.id, task_id="T1")
    state = fold_project("p1", [p, assigned, started, back, late])
    assert refused_ids(state) == {late.id}
    assert state.tasks["T1"].status == TaskStatus.ASSIGNED


def test_racing_task_claims_keep_the_first() -> None:
    p = make("project.created", 1)
    assigned = make("task.assigned", 2, actor="pm.api", causation=p.id, task_id="T1",
                    module="api")
    a = make("task.started", 3, actor="dev.api", causation=assigned.id, task_id="T1",
             worker="w-a")
    b = make("task.started", 3, actor="dev.api", causation=assigned.id, task_id="T1",
             worker="w-b")
    state = fold_project("p1", [b, a, assigned, p])
    assert state.tasks["T1"].claimed_by == "w-a" and refused_ids(state) == {b.id}


def test_plan_claim_claims_resumes_takes_over_or_leaves() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=60, at_s=2)
    state = fold_project("p1", [p, a])
    soon, late = T0 + timedelta(seconds=30), T0 + timedelta(seconds=100)
    assert plan_claim(state, "cto", p.id, "w-a", soon).action == "resume"
    assert plan_claim(state, "cto", p.id, "w-b", soon).action == "held"
    assert plan_claim(state, "cto", p.id, "w-b", late).action == "take_over"
    assert plan_claim(state, "engineer", p.id, "w-b", soon).action == "claim"
    assert [c.worker for _, c in held_by_others(state, "w-b", soon)] == ["w-a"]
    assert held_by_others(state, "w-b", late) == []


def _dev_task_started(lease_s: int) -> tuple[list[ev.Event], ev.Event, ev.Event]:
    p = make("project.created", 1)
    assigned = make("task.assigned", 2, actor="pm.api", causation=p.id, task_id="T1",
                    module="api")
    started = make("task.started", 3, actor="dev.api", causation=assigned.id, task_id="T1",
                   worker="w-a", lease_s=lease_s, at_s=3)
    return [p, assigned, started], assigned, started


def test_a_dev_renewing_its_lease_is_not_handed_back_and_lands_its_result() -> None:
    log, assigned, started = _dev_task_started(lease_s=60)
    renewal = make("reaction.claimed", 4, actor="dev.api", causation=assigned.id, at_s=40,
                   worker="w-a", lease_s=60, takeover_of=started.id, kind="work")
    state = fold_project("p1", [*log, renewal])
    after_first_lease = FlowSettings(worker="w-b", now=T0 + timedelta(seconds=80))
    assert not [r for r in pending_reactions(state, after_first_lease)
                if r.kind == "reclaim_stale"]
    after_renewal = FlowSettings(worker="w-b", now=T0 + timedelta(seconds=101))
    assert [r.subject for r in pending_reactions(state, after_renewal)
            if r.kind == "reclaim_stale"] == ["T1"]
    # The result names the renewal; one under the first claim would be fenced out.
    done = make("task.completed", 5, actor="dev.api", causation=assigned.id,
                claim=renewal.id, task_id="T1")
    state = fold_project("p1", [*log, renewal, done])
    assert not state.findings and state.tasks["T1"].status == TaskStatus.COMPLETED


def test_only_the_holder_renews_and_never_after_its_lease_was_handed_back() -> None:
    log, assigned, started = _dev_task_started(lease_s=5)
    stranger = make("reaction.claimed", 4, actor="dev.api", causation=assigned.id, at_s=4,
                    worker="w-b", lease_s=60, takeover_of=started.id, kind="work")
    state = fold_project("p1", [*log, stranger])
    assert refused_ids(state) == {stranger.id} and "holds until" in state.findings[0].reason
    back = make("task.assigned", 4, actor="monitor.api", causation=started.id, at_s=20,
                task_id="T1", reason="reactivated")
    late = make("reaction.claimed", 5, actor="dev.api", causation=assigned.id, at_s=21,
                worker="w-a", lease_s=60, takeover_of=started.id, kind="work")
    state = fold_project("p1", [*log, back, late])
    assert refused_ids(state) == {late.id}


def test_workers_seen_claiming_and_the_preferred_worker_of_a_reaction() -> None:
    p = created()
    a = claimed(2, "w-a", p.id, lease_s=60, at_s=2)
    b = make("reaction.claimed", 3, actor="engineer", causation=p.id, at_s=3, worker="w-b",
             lease_s=60, kind="propose")
    state = fold_project("p1", [p, a, b])
    soon, late = T0 + timedelta(seconds=30), T0 + timedelta(seconds=100)
    assert active_workers([state], "w-c", soon) == {"w-a", "w-b", "w-c"}
    assert active_workers([state], "w-c", late) == {"w-c"}  # gone quiet: not counted
    workers = {f"w-{i}" for i in range(8)}
    keys = [claim_key("dev.api", f"01J{i:023d}") for i in range(400)]
    owners = Counter(preferred_worker(k, workers) for k in keys)
    assert set(owners) == workers and min(owners.values()) >= 25  # spread over all eight
    # The same answer whatever order the set is built in; a worker leaving moves only its own.
    assert all(preferred_worker(k, set(sorted(workers, reverse=True))) == owners_k
               for k, owners_k in ((k, preferred_worker(k, workers)) for k in keys))
    fewer = workers - {"w-3"}
    assert all(preferred_worker(k, fewer) == preferred_worker(k, workers)
               for k in keys if preferred_worker(k, workers) != "w-3")


def test_claim_events_start_a_task_claim_other_work_and_record_a_takeover() -> None:
    state = fold_project("p1", scripted_log()[:7])  # T1 of backend assigned
    work = Reaction("work", "dev.backend", "c1", ("task.completed",), subject="T1")
    (start,) = claim_events(state, work, ClaimPlan("claim"), "w1", 60)
    assert isinstance(start.payload, ev.TaskStarted) and start.actor == "dev.backend"
    backlog = Reaction("plan_backlog", "pm.backend", "c2", ("task.assigned",), subject="backend")
    (claimed,) = claim_events(state, backlog, ClaimPlan("claim"), "w1", 60)
    assert isinstance(claimed.payload, ev.ReactionClaimed) and claimed.causation_id == "c2"
    stale = Claim(event_id="old", worker="w0", at="2026-01-01T00:00:00Z", lease_s=30)
    taken, alert = claim_events(state, backlog, ClaimPlan("take_over", stale), "w1", 60)
    assert isinstance(taken.payload, ev.ReactionClaimed) and taken.payload.takeover_of == "old"
    assert isinstance(alert.payload, ev.MonitorAlert) and alert.causation_id == "old"
    assert alert.actor == "monitor.backend" and "w0" in alert.payload.message
