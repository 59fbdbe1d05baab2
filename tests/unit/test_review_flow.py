"""Review in the pure core: a task whose work is on a branch waits in review after QA, is
merged (auto, or once approved), goes back as rework when rejected or conflicting, or ends
abandoned; plain lists of events in, states and reactions out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from pydantic import ValidationError

from orchestrator.core import events as ev
from orchestrator.core import review_events as rv
from orchestrator.core.config import Config
from orchestrator.core.flow import FlowSettings, pending_reactions
from orchestrator.core.fold import apply_event
from orchestrator.core.state import ModuleStatus, ProjectState, TaskStatus

BRANCH = "orch/p/t1"


class Log:
    def __init__(self) -> None:
        self.state = ProjectState(id="p")
        self.ids = count(1)
        self.last = ""
        self.add("system", ev.ProjectCreated())
        self.add("pm.api", ev.TaskAssigned(task_id="t1", module="api", requirements=["FR-1"]))

    def add(self, actor: str, payload: ev.Payload, causation: str | None = None) -> bool:
        n = next(self.ids)
        event = ev.Event(id=f"01J{n:023d}", seq=n, type=payload.type_name, project="p",
                         request_id="r", causation_id=causation or self.last or None,
                         actor=actor, at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
                         payload=payload)
        ok = apply_event(self.state, event)
        if ok:
            self.last = event.id
        return ok

    def to_review(self, branch: str = BRANCH) -> None:
        assert self.add("dev.api", ev.TaskStarted(task_id="t1", worker="w"))
        assert self.add("dev.api", ev.TaskCompleted(task_id="t1", artifacts=["project/p/api/a.py"],
                                                    branch=branch, head="a" * 40))
        assert self.add("monitor.api", ev.QaRequested(task_id="t1"))
        assert self.add("qa.api", ev.QaPassed(task_id="t1"))

    def reactions(self, mode: str = "auto") -> list[tuple[str, str]]:
        found = pending_reactions(self.state, FlowSettings(review_mode=mode))  # type: ignore[arg-type]
        return [(r.kind, r.subject) for r in found]

    @property
    def task(self):  # type: ignore[no-untyped-def]
        return self.state.tasks["t1"]


def test_a_qa_pass_on_a_branch_waits_in_review_and_auto_merges_it() -> None:
    log = Log()
    log.to_review()
    assert log.task.status == TaskStatus.IN_REVIEW and log.task.branch == BRANCH
    assert ("merge", "t1") in log.reactions("auto")
    assert not any(kind == "request_devops" for kind, _ in log.reactions("auto"))
    assert log.add("monitor.api", rv.TaskMerged(task_id="t1", branch=BRANCH, head="a" * 40))
    assert log.task.status == TaskStatus.PASSED and log.task.merged
    assert ("request_devops", "api") in log.reactions("auto")


def test_work_without_a_branch_passes_at_once() -> None:
    log = Log()
    log.to_review(branch="")
    assert log.task.status == TaskStatus.PASSED
    assert ("request_devops", "api") in log.reactions("human")


def test_human_mode_requests_a_review_once_and_merges_only_after_approval() -> None:
    log = Log()
    log.to_review()
    assert log.reactions("human") == [("request_review", "t1")]
    assert log.add("monitor.api", rv.ReviewRequested(task_id="t1", branch=BRANCH, head="a" * 40,
                                                     files=["project/p/api/a.py"]))
    assert log.reactions("human") == []  # the project waits for a person
    assert not log.add("monitor.api", rv.ReviewRequested(task_id="t1"))  # not twice
    assert log.add("spec", rv.ReviewApproved(task_id="t1", by="Pat"))
    assert log.reactions("human") == [("merge", "t1")]
    assert not log.add("spec", rv.ReviewApproved(task_id="t1", by="Pat"))
    assert log.add("monitor.api", rv.TaskMerged(task_id="t1"))
    assert log.task.status == TaskStatus.PASSED


def test_an_approval_the_host_merged_passes_without_a_merge_of_orch() -> None:
    log = Log()
    log.to_review()
    assert log.add("spec", rv.ReviewApproved(task_id="t1", source="github", merged=True,
                                             ref="https://example.invalid/pr/1"))
    assert log.task.status == TaskStatus.PASSED
    assert ("merge", "t1") not in log.reactions("human")


def test_a_rejection_is_a_rework_carrying_the_message_and_counted() -> None:
    log = Log()
    log.to_review()
    assert log.add("spec", rv.ReviewRejected(task_id="t1", findings=["Rename it to due()"]))
    assert log.task.status == TaskStatus.QA_FAILED
    found = pending_reactions(log.state, FlowSettings(review_mode="human"))
    rework = [r for r in found if r.kind == "rework"]
    assert len(rework) == 1
    assigned = rework[0].events[0].payload
    assert isinstance(assigned, ev.TaskAssigned) and assigned.findings == ["Rename it to due()"]
    assert log.add("monitor.api", assigned, causation=rework[0].causation_id)
    assert log.task.attempt == 2 and log.task.status == TaskStatus.ASSIGNED
    assert not log.task.review_event and not log.task.approved_event


def test_rejections_are_bounded_by_the_rework_limit() -> None:
    log = Log()
    for _ in range(3):
        log.to_review()
        assert log.add("spec", rv.ReviewRejected(task_id="t1", findings=["no"]))
        found = pending_reactions(log.state, FlowSettings(max_qa_rework=2))
        if log.task.attempt > 2:
            assert [r.kind for r in found] == ["rework_exhausted"]
            return
        r = next(r for r in found if r.kind == "rework")
        assert log.add(r.actor, r.events[0].payload, causation=r.causation_id)
    raise AssertionError("never exhausted")


def test_a_conflict_goes_back_naming_its_paths() -> None:
    log = Log()
    log.to_review()
    path = "project/p/api/a.py"
    assert log.add("monitor.api", rv.MergeConflicted(task_id="t1", branch=BRANCH, head="a" * 40,
                                                     main="b" * 40, paths=[path]))
    assert log.task.status == TaskStatus.QA_FAILED and log.task.conflicts == [path]
    r = next(r for r in pending_reactions(log.state, FlowSettings()) if r.kind == "rework")
    assigned = r.events[0].payload
    assert isinstance(assigned, ev.TaskAssigned)
    assert any(path in f and "both" in f for f in assigned.findings)
    assert log.add(r.actor, assigned, causation=r.causation_id)
    assert log.task.conflicts == [path]  # the rework's brief and commit need them
    with pytest.raises(ValidationError):
        rv.MergeConflicted(task_id="t1", paths=[])


def test_an_abandoned_review_ends_the_task_with_an_alert_and_no_deploy() -> None:
    log = Log()
    log.to_review()
    assert log.add("spec", rv.ReviewAbandoned(task_id="t1", reason="closed", source="github"))
    assert log.task.status == TaskStatus.ABANDONED
    assert log.state.alerts[-1].kind == "review_abandoned"
    kinds = log.reactions("human")
    assert ("squad_report", "api") in kinds and ("request_devops", "api") not in kinds
    assert log.state.modules["api"].status == ModuleStatus.IN_PROGRESS


def test_review_events_are_refused_for_a_task_not_in_review() -> None:
    log = Log()
    for payload in (rv.ReviewApproved(task_id="t1"), rv.TaskMerged(task_id="t1"),
                    rv.ReviewRejected(task_id="t1", findings=["x"]),
                    rv.ReviewAbandoned(task_id="t1"),
                    rv.MergeConflicted(task_id="t1", paths=["a"])):
        assert not log.add("spec", payload)
    assert log.task.status == TaskStatus.ASSIGNED
    assert all("expected in_review" in f.reason for f in log.state.findings)


def test_review_config_short_and_long_forms() -> None:
    assert Config().review.mode == "auto"
    assert Config.model_validate({"review": "human"}).review.mode == "human"
    long = Config.model_validate({"review": {"mode": "human", "host": "github",
                                             "max_open_prs": 3}})
    assert (long.review.mode, long.review.host, long.review.max_open_prs) == ("human", "github", 3)
    for bad in ("manual", {"mode": "auto", "hots": "local"}, {"max_open_prs": 0}):
        with pytest.raises(ValidationError):
            Config.model_validate({"review": bad})
