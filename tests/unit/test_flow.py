"""The flow with its agents and the offline provider, in memory: no git, no files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import count
from typing import Any

import pytest

from orchestrator.agents.base import AgentContext, RunChecks
from orchestrator.agents.team import perform
from orchestrator.core import events as ev
from orchestrator.core.config import Config, LanguageCheck, OfflineConfig, QaConfig
from orchestrator.core.flow import FlowSettings, pending_reactions
from orchestrator.core.fold import apply_event
from orchestrator.core.messages import Brief, Result, TemplateError, check_result
from orchestrator.core.state import ModuleStatus, ProjectState, ProjectStatus, TaskStatus
from orchestrator.runtime.prompts import load_prompt
from orchestrator.runtime.qa_run import CheckRunner
from orchestrator.sim.provider import OfflineProvider

# The venv's pytest plugins (hypothesis, anyio) cost ~2 s a start and generated tests need
# none; terraform init costs ~2 s a check and proves nothing about the flow.
FAST_CHECKS: dict[str, LanguageCheck | None] = {"terraform": None, "python": LanguageCheck(
    detect=["**/test_*.py"],
    command="PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -q -p no:cacheprovider {files}")}
SPEC = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()


class MemoryRun:
    """A whole project run in memory: events applied in order, files in a dict."""

    def __init__(self, config: Config, spec: str = SPEC, checks: RunChecks | None = None) -> None:
        self.config = config
        self.checks = checks
        self.files: dict[str, str] = {"specs/s.md": spec}
        self.state = ProjectState(id="task-tracker")
        self.log: list[ev.Event] = []
        self._ids = count(1)
        self.provider = OfflineProvider(config.llm.offline)
        self.append([ev.NewEvent(payload=ev.ProjectCreated(spec_path="specs/s.md",
                                                           spec_commit="c0"), actor="system")])

    def append(self, news: list[ev.NewEvent]) -> None:
        for new in news:
            n = next(self._ids)
            event = ev.Event(id=f"01J{n:023d}", seq=n, type=new.type, project="p",
                             request_id="r", causation_id=new.causation_id, actor=new.actor,
                             at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
                             payload=new.payload, links=new.links, usage=new.usage)
            assert apply_event(self.state, event), self.state.findings[-1].reason
            self.log.append(event)

    def run(self, max_steps: int = 2000) -> None:
        settings = FlowSettings(max_review_rounds=self.config.max_review_rounds,
                                max_qa_rework=self.config.max_qa_rework,
                                loop_guard=self.config.loop_guard, worker="w")
        for _ in range(max_steps):
            reactions = pending_reactions(self.state, settings)
            if not reactions:
                return
            r = reactions[0]
            ctx = AgentContext(project="task-tracker", state=self.state, config=self.config,
                               provider=self.provider, read_text=self.files.get, prompt=load_prompt,
                               run_checks=self.checks)
            out = perform(ctx, r)
            self.files.update({k: v.decode() for k, v in out.files.items()})
            self.append(out.events)
        raise AssertionError("the flow did not settle")

    def types(self) -> set[str]:
        return {e.type for e in self.log}


def config(**offline: object) -> Config:
    return Config(llm={"offline": OfflineConfig.model_validate(offline)})  # type: ignore[arg-type]


def test_clean_run_completes_with_every_task_passed() -> None:
    run = MemoryRun(config())
    run.run()
    s = run.state
    assert s.status == ProjectStatus.COMPLETED
    assert s.findings == []
    assert {m.status for m in s.modules.values()} == {ModuleStatus.COMPLETED}
    assert all(t.status == TaskStatus.PASSED for t in s.tasks.values())
    assert any(p.startswith("project/task-tracker/docs/charter") for p in run.files)
    # Every artifact lands under the project's folder.
    assert all(p.startswith(("project/task-tracker/", "specs/")) for p in run.files)


def test_fault_knobs_drive_every_branch_of_the_flow() -> None:
    # QA's checks really run (unconfined: the code is the simulator's own).
    knobs = config(seed=7, qa_fail_rate=0.35, rework_fail_rate=0.3, blocker_rate=0.2,
                   dependency_request_rate=1.0)
    knobs = knobs.model_copy(update={"qa": QaConfig(sandbox="none", languages=FAST_CHECKS)})
    run = MemoryRun(knobs, checks=CheckRunner(knobs.qa).run)
    run.run()
    s = run.state
    assert set(ev.SOURCE_EVENT_TYPES) <= run.types()
    exhausted = [t for t in s.tasks.values() if t.status == TaskStatus.REWORK_EXHAUSTED]
    reworked = [t for t in s.tasks.values() if t.status == TaskStatus.PASSED and t.attempt > 1]
    assert exhausted and reworked
    for t in exhausted:  # no DevOps for a squad with a rework-exhausted task
        assert s.modules[t.module].status == ModuleStatus.FAILED
        assert not any(e.type == "devops.requested" and e.payload.subject() == t.module
                       and e.seq > 0 for e in run.log)
    assert s.blocks and all(b.status == "resolved" for b in s.blocks.values())
    assert s.dependencies and all(d.status == "fulfilled" for d in s.dependencies.values())
    assert s.status == ProjectStatus.COMPLETED


def test_same_seed_same_states_and_artifacts() -> None:
    a, b = MemoryRun(config(seed=3, qa_fail_rate=0.3)), MemoryRun(config(seed=3, qa_fail_rate=0.3))
    a.run()
    b.run()
    assert [(e.type, e.actor, e.payload) for e in a.log] == [
        (e.type, e.actor, e.payload) for e in b.log]
    assert a.files == b.files


def test_changes_requested_starts_a_new_round() -> None:
    run = MemoryRun(config())
    run.run()
    run.append([ev.NewEvent(payload=ev.ProjectChangesRequested(message="add labels to tasks"),
                            actor="spec")])
    run.run()
    assert run.state.round == 2
    assert run.state.status == ProjectStatus.COMPLETED
    assert any(t.round == 2 for t in run.state.tasks.values())


def test_pending_reactions_are_idempotent_once_written() -> None:
    run = MemoryRun(config())
    settings = FlowSettings(worker="w")
    first = pending_reactions(run.state, settings)
    assert [r.kind for r in first] == ["review_spec"]
    ctx = AgentContext(project="task-tracker", state=run.state, config=run.config,
                       provider=run.provider, read_text=run.files.get, prompt=load_prompt)
    run.append(perform(ctx, first[0]).events)
    assert all(r.key != first[0].key for r in pending_reactions(run.state, settings))


def test_brief_and_result_templates_round_trip_and_reject_unanswered_results() -> None:
    brief = Brief(task="Do X", context="All of it", expected_return="Y",
                  expected_files=("project/p/a.py",))
    assert Brief.parse(brief.render()) == brief
    result = Result(response="done", additional_info="none")
    assert Result.parse(result.render()).response == "done"
    assert check_result(brief, result.render(), {"project/p/a.py"}).response == "done"
    with pytest.raises(TemplateError, match="not written"):
        check_result(brief, result.render(), set())
    with pytest.raises(TemplateError, match="EXPECTED RETURN RESPONSE"):
        check_result(brief, "[ANY OTHER ADDITIONAL INFORMATION]\nx\n", {"project/p/a.py"})


class QuestioningProvider:
    """The offline team, except that the CTO asks questions for the first `rounds` rounds."""

    name = "questioning"

    def __init__(self, rounds: int) -> None:
        self.inner = OfflineProvider(OfflineConfig())
        self.rounds = rounds
        self.asked = 0

    def complete(self, role: str, messages: Any, output_model: Any, meta: Any) -> Any:
        from orchestrator.agents.outputs import ProposalDecision
        from orchestrator.core.provider import Completion

        completion = self.inner.complete(role, messages, output_model, meta)
        if output_model is ProposalDecision and self.asked < self.rounds:
            self.asked += 1
            return Completion(output=ProposalDecision(
                approve=False, questions=[f"question {self.asked}"], rationale="unclear",
                charter_markdown=""), usage=completion.usage)
        return completion


@pytest.mark.parametrize(("questions", "rounds"), [(1, 2), (10, 3)])
def test_cto_engineer_loop_is_bounded_by_max_review_rounds(questions: int, rounds: int) -> None:
    run = MemoryRun(config())
    run.provider = QuestioningProvider(questions)  # type: ignore[assignment]
    run.run()
    requests = [e for e in run.log if e.type == "cto.engineer.request"]
    assert [e.payload.round for e in requests] == list(range(1, rounds + 1))  # type: ignore[attr-defined]
    assert requests[1].payload.questions == ["question 1"]  # type: ignore[attr-defined]
    charter = [e for e in run.log if e.type == "charter.created"]
    assert len(charter) == 1 and charter[0].payload.rounds == rounds  # type: ignore[attr-defined]
    assert run.state.status == ProjectStatus.COMPLETED


def test_loop_guard_stops_a_round_that_grows_too_long() -> None:
    run = MemoryRun(Config(loop_guard=40))
    run.run()
    guards = [a for a in run.state.alerts if a.kind == "loop_guard"]
    assert len(guards) == 1 and "loop guard of 40" in guards[0].message
    assert run.state.status != ProjectStatus.COMPLETED
    assert pending_reactions(run.state, FlowSettings(loop_guard=40, worker="w")) == []
