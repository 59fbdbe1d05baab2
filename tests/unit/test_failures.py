"""Failed reactions on plain lists of events: one alert per attempt, the latest current, K
failures then a wait for `orch retry`, resolved when the reaction later succeeds."""

from __future__ import annotations

from itertools import count
from typing import Any

from orchestrator.core.failures import failure_alert
from orchestrator.core.flow import FlowSettings, Reaction, block_allowed, pending_reactions
from orchestrator.core.fold import fold_project
from orchestrator.core.state import ProjectState, TaskStatus
from orchestrator.core.views import project_view
from tests.unit.test_fold import as_cached, make, scripted_log

SEQ = count(100)


def created() -> list[Any]:
    return [make("project.created", 1, spec_path="specs/a.md", spec_commit="abc")]


def failure(causation: str, attempt: int, why: str, limit: int = 3) -> Any:
    return make("monitor.alert", next(SEQ), causation=causation, kind="provider_error",
                severity="error", message=f"cto review_spec: {why}", reaction="review_spec",
                reaction_actor="cto", attempt=attempt, max_failures=limit)


def reviews(state: ProjectState, k: int = 3) -> list[str]:
    return [r.kind for r in pending_reactions(state, FlowSettings(max_failures=k))
            if r.kind == "review_spec"]


def test_each_failure_is_its_own_alert_and_only_the_latest_is_current() -> None:
    log = created()
    cause = log[0].id
    log += [failure(cause, 1, "HTTP 500"), failure(cause, 2, "answer truncated")]
    state = fold_project("p1", log)
    assert [(a.attempt, a.state) for a in state.alerts] == [(1, "superseded"), (2, "current")]
    view = project_view(state)
    assert view["failed_reactions"] == [{
        "reaction": "review_spec", "actor": "cto", "attempts": 2, "failures": 2,
        "reason": "cto review_spec: answer truncated", "waiting": False}]
    assert reviews(state) == ["review_spec"]  # two of three: the next run tries again


def test_k_failures_wait_for_a_person_and_retry_starts_them_again() -> None:
    log = created()
    cause = log[0].id
    log += [failure(cause, n, f"bad answer {n}") for n in (1, 2, 3)]
    state = fold_project("p1", log)
    assert reviews(state) == []
    assert project_view(state)["failed_reactions"][0]["waiting"] is True
    assert reviews(state, k=4) == ["review_spec"]  # a higher bound in the config counts
    log.append(make("reaction.retried", next(SEQ), reactions=["review_spec"]))
    state = fold_project("p1", log)
    assert reviews(state) == ["review_spec"]
    log.append(failure(cause, 4, "still bad"))
    state = fold_project("p1", log)
    assert state.failing[f"cto {cause}"].attempts == 4
    assert reviews(state) == ["review_spec"]  # one failure since the retry
    retried_other = fold_project("p1", [*log[:4], make("reaction.retried", next(SEQ),
                                                      reactions=["plan_backlog:web"])])
    assert reviews(retried_other) == []


def test_a_reaction_that_later_succeeds_resolves_its_alerts() -> None:
    log = created()
    cause = log[0].id
    log += [failure(cause, 1, "HTTP 500"), failure(cause, 2, "timeout"),
            make("spec.reviewed", next(SEQ), actor="cto", causation=cause)]
    state = fold_project("p1", log)
    assert [a.state for a in state.alerts] == ["resolved", "resolved"]
    assert project_view(state)["failed_reactions"] == []
    assert ProjectState.from_cache(as_cached(state)).alerts == state.alerts


def test_the_failed_calls_usage_on_an_alert_counts_in_the_totals() -> None:
    from orchestrator.core import events as ev

    log = created()
    alert = failure(log[0].id, 1, "rejected")
    alert = alert.model_copy(update={"usage": ev.Usage(prompt_tokens=700, completion_tokens=90,
                                                        calls=3)})
    state = fold_project("p1", [*log, alert])
    assert (state.usage.prompt_tokens, state.usage.completion_tokens, state.usage.calls) == \
        (700, 90, 3)


def test_a_dev_failure_is_resolved_by_its_reworked_task_completing_or_ends_with_it() -> None:
    log = created()
    log += [make("spec.reviewed", 2), make("cto.engineer.request", 3),
            make("engineer.cto.response", 4, squads=[{"name": "backend"}]),
            make("charter.created", 5), make("module.planned", 6, module="backend")]
    assigned = make("task.assigned", 7, task_id="T1", module="backend")
    dev_failure = make("monitor.alert", 8, causation=assigned.id, kind="invalid_output",
                       severity="error", message="dev.backend work T1: no file", task_id="T1",
                       reaction="work:T1", reaction_actor="dev.backend", attempt=1,
                       max_failures=3)
    rework = make("task.assigned", 9, task_id="T1", reason="rework")
    done = fold_project("p1", [*log, assigned, dev_failure, rework,
                               make("task.completed", 10, task_id="T1")])
    assert done.alerts[0].state == "resolved" and not done.failing
    exhausted = fold_project("p1", [*log, assigned, dev_failure, make(
        "monitor.alert", 9, kind="rework_exhausted", task_id="T1", message="gave up")])
    assert [a.state for a in exhausted.alerts] == ["superseded", "current"]
    assert not exhausted.failing


def test_a_failure_alert_names_its_attempt_and_the_kth_one_waits() -> None:
    log = created()
    cause = log[0].id
    review = Reaction("review_spec", "cto", cause, ("spec.reviewed",))
    first = failure_alert(fold_project("p1", log), review, "provider_error", "HTTP 500", 3)
    assert (first.alert.attempt, first.alert.kind, first.waits) == (1, "provider_error", False)
    assert first.alert.message == "cto review_spec: HTTP 500" and not first.task_attempt
    log += [failure(cause, 1, "HTTP 500"), failure(cause, 2, "HTTP 500")]
    third = failure_alert(fold_project("p1", log), review, "weird", "no answer", 3)
    assert (third.alert.attempt, third.alert.kind, third.waits) == (3, "other", True)


def test_only_a_devs_unusable_answer_on_its_own_task_counts_as_an_attempt() -> None:
    log = scripted_log()[:7]  # T1 of backend assigned
    task = next(e for e in log if e.type == "task.assigned")
    work = Reaction("work", "dev.backend", task.id, ("task.completed",), subject="T1")
    state = fold_project("p1", log)
    assert failure_alert(state, work, "invalid_output", "no file", 3).task_attempt
    state.tasks["T1"].status = TaskStatus.PASSED  # the answer came after the task moved on
    late = failure_alert(state, work, "invalid_output", "no file", 3)
    assert late.alert.kind == "other" and not late.task_attempt


def test_a_block_is_reported_once_per_task_and_never_by_a_fix() -> None:
    log = scripted_log()[:7]
    log.append(make("module.planned", 50, module="web"))
    state = fold_project("p1", log)
    t1 = state.tasks["T1"]
    assert block_allowed(state, t1, "web")
    assert not block_allowed(state, t1, "backend")  # its own squad
    assert not block_allowed(state, t1, "nowhere")  # no such squad
    state.tasks["T1"].reason = "fix"
    assert not block_allowed(state, state.tasks["T1"], "web")
