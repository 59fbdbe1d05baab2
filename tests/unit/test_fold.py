"""The fold on plain lists of events: statuses, illegal transitions, duplicates, order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import orjson

from orchestrator.core import events as ev
from orchestrator.core.fold import fold, fold_project
from orchestrator.core.state import ModuleStatus, ProjectState, ProjectStatus, TaskStatus
from orchestrator.core.views import project_view

_ids = count(1)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make(type_name: str, seq: int, actor: str | None = None, causation: str | None = None,
         project: str = "p1", **payload: Any) -> ev.Event:
    n = next(_ids)
    model = ev.payload_model(type_name)
    return ev.Event(
        id=f"01J{n:023d}", seq=seq, type=type_name, project=project, request_id="req",
        causation_id=causation, actor=actor or model.default_actor,
        at=T0 + timedelta(seconds=seq), payload=model.model_validate(payload),
    )


def as_cached(state: ProjectState) -> dict[str, Any]:
    """The state as the cache adapter writes and reads it back (orjson, sets sorted)."""
    return dict(orjson.loads(orjson.dumps(state, default=lambda s: sorted(map(list, s)))))


def scripted_log() -> list[ev.Event]:
    seq = count(1)
    return [
        make("project.created", next(seq), spec_path="specs/a.md", spec_commit="abc"),
        make("spec.reviewed", next(seq)),
        make("cto.engineer.request", next(seq)),
        make("engineer.cto.response", next(seq), squads=[{"name": "backend"}]),
        make("charter.created", next(seq)),
        make("module.planned", next(seq), module="backend"),
        make("task.assigned", next(seq), task_id="T1", module="backend",
             requirements=["FR-1"]),
        make("task.completed", next(seq), task_id="T1"),
        make("qa.failed", next(seq), task_id="T1", findings=["missing tests"]),
        make("task.assigned", next(seq), task_id="T1", reason="rework"),
        make("task.completed", next(seq), task_id="T1"),
        make("qa.passed", next(seq), task_id="T1"),
        make("task.assigned", next(seq), task_id="T2", module="backend"),
        make("block.reported", next(seq), block_id="B1", task_id="T2",
             responsible_squad="web", description="needs the API"),
        make("block.resolved", next(seq), block_id="B1"),
    ]


def test_scripted_log_gives_expected_statuses() -> None:
    state = fold(scripted_log())["p1"]
    assert state.status == ProjectStatus.IN_PROGRESS
    assert state.spec_ref == "specs/a.md@abc"
    t1, t2 = state.tasks["T1"], state.tasks["T2"]
    assert (t1.status, t1.attempt) == (TaskStatus.PASSED, 2)
    assert t2.status == TaskStatus.BLOCKED
    assert state.blocks["B1"].status == "resolved"
    assert state.modules["backend"].status == ModuleStatus.IN_PROGRESS
    assert state.findings == []
    assert [n.kind for n in state.notices] == ["block", "block_resolved"]


def test_fold_orders_by_seq_then_id_whatever_the_input_order() -> None:
    log = scripted_log()
    assert project_view(fold(reversed(log))["p1"]) == project_view(fold(log)["p1"])


def test_illegal_transition_is_a_finding_and_leaves_state_alone() -> None:
    log = scripted_log()[:8]  # T1 completed
    log.append(make("task.completed", 9, task_id="T1"))
    log.append(make("qa.passed", 10, task_id="T9"))
    state = fold(log)["p1"]
    assert state.tasks["T1"].status == TaskStatus.COMPLETED
    reasons = [f.reason for f in state.findings]
    assert any("task 'T1' is completed" in r for r in reasons)
    assert any("unknown task 'T9'" in r for r in reasons)
    assert state.events == 10


def test_duplicate_reaction_is_kept_out() -> None:
    created = make("project.created", 1)
    first = make("spec.reviewed", 2, actor="cto", causation=created.id)
    again = make("spec.reviewed", 3, actor="cto", causation=created.id)
    state = fold([created, first, again])["p1"]
    assert len(state.findings) == 1 and "duplicate reaction" in state.findings[0].reason
    assert state.findings[0].event_id == again.id


def test_events_before_project_created_are_refused() -> None:
    state = fold([make("spec.reviewed", 1)])["p1"]
    assert not state.created_event
    assert "no project.created" in state.findings[0].reason


def test_rework_exhausted_blocks_devops_for_the_squad() -> None:
    log = scripted_log()[:9]  # T1 qa_failed
    log.append(make("monitor.alert", 10, kind="rework_exhausted", task_id="T1",
                    module="backend"))
    log.append(make("devops.requested", 11, module="backend"))
    state = fold(log)["p1"]
    assert state.tasks["T1"].status == TaskStatus.REWORK_EXHAUSTED
    assert state.modules["backend"].status == ModuleStatus.IN_PROGRESS
    assert "rework-exhausted" in state.findings[-1].reason


def test_incremental_fold_equals_full_fold_and_cache_round_trips() -> None:
    log = scripted_log()
    full = fold_project("p1", log)
    part = fold_project("p1", log[:7])
    part = ProjectState.from_cache(as_cached(part))
    fold_project("p1", log[7:], part)
    assert project_view(part) == project_view(full)
    assert ProjectState.from_cache(as_cached(full)) == full


def test_project_lifecycle_to_acceptance_and_changes() -> None:
    log = scripted_log()[:12]
    log += [
        make("devops.requested", 13, module="backend"),
        make("devops.deployed", 14, module="backend", smoke_tests=[{"name": "h", "passed": True}]),
        make("module.completed", 15, module="backend"),
        make("project.completed", 16, summary="done"),
        make("project.changes_requested", 17, message="add labels"),
        make("module.planned", 18, module="backend"),
    ]
    state = fold(log)["p1"]
    assert state.findings == []
    assert state.round == 2
    assert state.status == ProjectStatus.IN_PROGRESS
    assert state.modules["backend"].status == ModuleStatus.PLANNED
