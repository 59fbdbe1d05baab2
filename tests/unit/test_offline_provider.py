"""The offline provider: real, deterministic answers for every kind of call, on any spec."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

import orchestrator
from orchestrator.agents import outputs as out
from orchestrator.core.config import OfflineConfig
from orchestrator.core.messages import Brief
from orchestrator.core.provider import CallMeta, Message
from orchestrator.errors import ProviderError
from orchestrator.sim.provider import OfflineProvider

T = TypeVar("T", bound=BaseModel)

EXAMPLE = (Path(orchestrator.__file__).parent / "examples" / "task-tracker.md").read_text()
ALL_IDS = [f"FR-{n}" for n in range(1, 10)] + [f"NFR-{n}" for n in range(1, 5)]
MOBILE_SPEC = """\
# Field notes

## Overview

Technicians record site visits on their phones, offline, and the records sync later.

## Requirements

### Mobile

- FR-1: The iOS and Android app records a visit (site, notes, photo) without network.
- FR-2: The app syncs recorded visits when the phone is back online.

### Infrastructure

- FR-3: A CI pipeline builds the app and publishes it to the store test tracks.
- FR-4: The sync service runs on Kubernetes with two replicas and a readiness probe.
- NFR-1: The infrastructure is described as Terraform and deployable with one command.

## Quality

- NFR-2: The app starts in under 2 seconds.
"""


def brief(facts: dict[str, Any], sections: Sequence[tuple[str, str]] = (),
          task: str = "Do it", files: tuple[str, ...] = ()) -> str:
    context = "## Facts\n" + "\n".join(f"{k}: {v}" for k, v in facts.items())
    for name, body in sections:
        context += f"\n\n## {name}\n{body}"
    return Brief(task=task, context=context, expected_return="The answer.",
                 expected_files=files).render()


def ask(model: type[T], text: str, provider: OfflineProvider | None = None, **config: Any) -> T:
    provider = provider or OfflineProvider(OfflineConfig(**config))
    messages = [Message("system", "You are an agent."), Message("user", text)]
    meta = CallMeta("task-tracker", "agent", "k")
    return provider.complete("agent", messages, model, meta).output


def review(spec: str = EXAMPLE) -> out.SpecReviewOutput:
    return ask(out.SpecReviewOutput, brief({"project": "task-tracker"},
                                           [("Spec: specs/task-tracker.md", spec)]))


def req_lines(rev: out.SpecReviewOutput, ids: list[str] | None = None) -> str:
    return "\n".join(f"- {r.id} ({r.area}): {r.text}" for r in rev.requirements
                     if ids is None or r.id in ids)


def backend_backlog(**config: Any) -> out.BacklogOutput:
    rev = review()
    prop = ask(out.ProposalOutput, brief({"project": "task-tracker"}, [("Requirements",
                                                                        req_lines(rev))]))
    squad = next(s for s in prop.squads if s.name == "backend")
    facts = {"project": "task-tracker", "squad": "backend", "squads": "backend, web",
             "round": 1, "max_depth": config.pop("max_depth", 1)}
    return ask(out.BacklogOutput, brief(facts, [("Requirements",
                                                 req_lines(rev, squad.requirements))]), **config)


def leaves(tasks: list[out.PlannedTask]) -> list[out.PlannedTask]:
    return [leaf for t in tasks for leaf in (leaves(t.subtasks) if t.subtasks else [t])]


FR3 = ("- FR-3 (backend): Users sign in with email and password; the API issues a session "
       "token that expires after 12 hours.")


def dev_brief(reason: str = "new", attempt: int = 1, squads: str = "backend, web",
              findings: str = "", files: tuple[str, ...] = ("src/auth.py", "tests/test_auth.py"),
              squad: str = "backend", depends_on: str = "") -> str:
    sections = [("Requirements", FR3)] + ([("QA findings", findings)] if findings else [])
    facts = {"project": "task-tracker", "squad": squad, "squads": squads, "task": f"{squad}-3",
             "attempt": attempt, "reason": reason, "depends_on": depends_on}
    return brief(facts, sections, task="Users sign in with email and password", files=files)


def artifacts(files: list[out.FileOutput]) -> str:
    return "\n".join(f"### {f.path}\n{f.content}" for f in files)


def qa_brief(files: list[out.FileOutput], attempt: int = 1, reqs: str = FR3) -> str:
    facts = {"project": "task-tracker", "squad": "backend", "task": "backend-3",
             "attempt": attempt}
    return brief(facts, [("Requirements", reqs), ("Artifacts", artifacts(files))])


def test_review_finds_every_requirement_with_its_area() -> None:
    rev = review()
    assert rev.title == "Task tracker for small teams"
    assert [r.id for r in rev.requirements] == ALL_IDS
    areas = {r.id: r.area for r in rev.requirements}
    assert {areas[f"FR-{n}"] for n in range(1, 6)} == {"backend"}
    assert {areas[f"FR-{n}"] for n in range(6, 10)} == {"web"}
    assert (areas["NFR-1"], areas["NFR-3"], areas["NFR-4"]) == ("backend", "web", "infrastructure")
    assert rev.areas[:2] == ["backend", "web"]
    fr1 = next(r for r in rev.requirements if r.id == "FR-1")
    assert fr1.text.endswith("(title, description, status, assignee, due date).")
    assert "## Requirements by area" in rev.understood_spec_markdown
    assert any(q.startswith("NFR-2") for q in rev.open_questions)


def test_review_reads_headings_tables_and_bold_ids() -> None:
    spec = ("# Notes\n\n## Web\n\n### FR-1: Create notes\n\nUsers create notes with a title.\n\n"
            "## Other\n\n**FR-2**: The API stores notes in a database.\n\n"
            "| id | area | text |\n|---|---|---|\n| FR-3 | mobile | The app lists notes |\n")
    rev = review(spec)
    assert [(r.id, r.area) for r in rev.requirements] == [
        ("FR-1", "web"), ("FR-2", "backend"), ("FR-3", "mobile")]
    assert rev.requirements[0].text == "Create notes. Users create notes with a title."


def test_usage_is_estimated_and_latency_reported() -> None:
    provider = OfflineProvider(OfflineConfig(latency_ms=1))
    text = brief({"project": "p"}, [("Spec: s.md", EXAMPLE)])
    done = provider.complete("cto", [Message("user", text)], out.SpecReviewOutput,
                             CallMeta("p", "cto", "review"))
    assert done.usage.model == "offline" and done.usage.cost_usd == 0 and done.usage.calls == 1
    assert done.usage.prompt_tokens == len(text) // 4
    assert done.usage.completion_tokens == len(done.output.model_dump_json()) // 4
    assert done.usage.latency_ms == 1


def test_proposal_gives_backend_and_web_covering_every_requirement() -> None:
    rev = review()
    questions = "\n".join(f"- {q}" for q in rev.open_questions)
    prop = ask(out.ProposalOutput, brief({"project": "task-tracker", "round": 1}, [
        ("Spec: specs/task-tracker.md", EXAMPLE), ("Requirements", req_lines(rev)),
        ("Questions", questions)]))
    squads = {s.name: s for s in prop.squads}
    assert list(squads) == ["backend", "web"]
    assert squads["web"].depends_on == ["backend"] and squads["backend"].depends_on == []
    assert sorted(r for s in prop.squads for r in s.requirements) == sorted(ALL_IDS)
    assert len(prop.answers) == len(rev.open_questions)
    assert "| backend |" in prop.proposal_markdown


def test_decision_approves_a_covering_proposal_and_questions_a_partial_one() -> None:
    rev = review()
    prop = ask(out.ProposalOutput, brief({"project": "task-tracker"},
                                         [("Requirements", req_lines(rev))]))
    facts = {"project": "task-tracker", "round": 1, "max_rounds": 3}
    ok = ask(out.ProposalDecision, brief(facts, [("Requirements", req_lines(rev)),
                                                 ("Proposal", prop.proposal_markdown)]))
    assert ok.approve and not ok.questions
    assert "| web |" in ok.charter_markdown and "| FR-9 | web |" in ok.charter_markdown
    partial = "- backend: FR-1, FR-2, FR-3, FR-4, FR-5, NFR-1, NFR-2, NFR-4\n- web: FR-6, FR-7"
    sections = [("Requirements", req_lines(rev)), ("Proposal", partial)]
    no = ask(out.ProposalDecision, brief(facts, sections))
    assert not no.approve and no.charter_markdown == ""
    assert [q.split()[0] for q in no.questions] == ["FR-8", "FR-9", "NFR-3"]
    last = ask(out.ProposalDecision, brief({**facts, "round": 3}, sections))
    assert last.approve and "| web |" in last.charter_markdown


def test_backlog_plans_tasks_with_files_for_every_requirement() -> None:
    backlog = backend_backlog()
    ids = ["FR-1", "FR-2", "FR-3", "FR-4", "FR-5", "NFR-1", "NFR-2", "NFR-4"]
    assert [t.requirements for t in backlog.tasks] == [[i] for i in ids]
    assert [t.key for t in backlog.tasks] == [f"T{n}" for n in range(1, 9)]
    for leaf in leaves(backlog.tasks):
        assert leaf.expected_files and not leaf.subtasks
        assert all(not p.startswith("/") and ".." not in p for p in leaf.expected_files)
    assert "src/rest_api_tasks.py" in backlog.tasks[0].expected_files
    assert any(p.endswith(".tf") for p in backlog.tasks[-1].expected_files)
    fr_keys = [t.key for t in backlog.tasks if t.requirements[0].startswith("FR")]
    assert all(t.depends_on == fr_keys for t in backlog.tasks if t.requirements[0][0] == "N")
    fr2 = backlog.tasks[1]
    assert [s.key for s in fr2.subtasks] == ["T2a", "T2b"] and fr2.expected_files == []
    flat = backend_backlog(max_depth=0, tasks_per_requirement=2)
    assert len(flat.tasks) == 16 and not any(t.subtasks for t in flat.tasks)
    all_files = [p for t in flat.tasks for p in t.expected_files]
    assert len(all_files) == len(set(all_files))


def test_dependency_request_follows_its_rate() -> None:
    facts = {"project": "task-tracker", "squad": "web", "squads": "backend, web",
             "depends_on": "backend", "max_depth": 1}
    text = brief(facts, [("Requirements", "- FR-7 (web): The web app has a sign-in page.")])
    always = ask(out.BacklogOutput, text, dependency_request_rate=1.0)
    assert [(d.to_squad, d.task_key) for d in always.dependency_requests] == [("backend", "T1")]
    assert "API contract" in always.dependency_requests[0].need
    assert ask(out.BacklogOutput, text, dependency_request_rate=0.0).dependency_requests == []


def test_change_request_gives_one_or_two_tasks() -> None:
    facts = {"project": "task-tracker", "squad": "backend", "round": 2,
             "change_request": "Tokens expire after 8 hours. Add a sign-out endpoint."}
    backlog = ask(out.BacklogOutput, brief(facts, [("Requirements", FR3)]))
    assert len(backlog.tasks) == 2
    assert all(t.requirements == ["FR-3"] and t.expected_files for t in backlog.tasks)


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_dev_writes_every_expected_file_and_its_tests_pass(tmp_path: Path) -> None:
    files = ("src/auth.py", "tests/test_auth.py", "docs/auth.md", "infra/auth.tf")
    dev = ask(out.DevOutput, dev_brief(files=files))
    assert not dev.blocked and dev.blocker is None
    assert [f.path for f in dev.files] == list(files)
    for f in dev.files:
        assert f.content.strip() and "FR-3" in f.content
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).write_text(f.content)
    assert "FR-3" in dev.result.response
    tests = _load(tmp_path / "tests" / "test_auth.py", "offline_generated_test_auth")
    names = [n for n in dir(tests) if n.startswith("test_")]
    assert "test_token_expires" in names
    for name in names:
        getattr(tests, name)()
    assert tests.mod.TOKEN_TTL_SECONDS == 12 * 3600


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_generated_web_files_pass_their_own_node_tests(tmp_path: Path) -> None:
    reqs = ("- FR-6 (web): The web app shows a board with one column per status and lets a user "
            "drag a task from one column to another.\n- FR-7 (web): The web app has a sign-in "
            "page and keeps the user signed in until the token expires.")
    files = ("src/board.js", "src/board.html", "tests/board.test.js")
    dev = ask(out.DevOutput, brief({"project": "task-tracker", "squad": "web", "task": "web-1"},
                                   [("Requirements", reqs)], task="Board", files=files))
    for f in dev.files:
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f.path).write_text(f.content)
    assert 'from "./board.js"' in dev.files[1].content
    run = subprocess.run(["node", "--test", "tests/board.test.js"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_rework_addresses_each_finding() -> None:
    finding = "FR-3: no test covers 'the session token that expires after 12 hours'."
    dev = ask(out.DevOutput, dev_brief(reason="rework", attempt=2, findings=f"- {finding}"),
              blocker_rate=1.0)
    assert not dev.blocked
    test_file = next(f for f in dev.files if f.path.startswith("tests/"))
    assert "def test_qa_finding_1" in test_file.content and "QA finding" in test_file.content
    assert finding in dev.result.response


def test_blocker_follows_its_rate_only_on_a_first_new_attempt() -> None:
    first = dev_brief(squad="web", squads="backend, web", depends_on="backend",
                      files=("src/signin.js",))
    blocked = ask(out.DevOutput, first, blocker_rate=1.0)
    assert blocked.blocked and blocked.files == []
    assert blocked.blocker is not None and blocked.blocker.squad == "backend"
    assert blocked.result.response
    assert not ask(out.DevOutput, first, blocker_rate=0.0).blocked
    assert not ask(out.DevOutput, dev_brief(reason="rework", attempt=2), blocker_rate=1.0).blocked
    assert not ask(out.DevOutput, dev_brief(squads="backend"), blocker_rate=1.0).blocked


def test_qa_passes_at_rate_zero_and_fails_deterministically_at_rate_one() -> None:
    dev = ask(out.DevOutput, dev_brief())
    passed = ask(out.QaOutput, qa_brief(dev.files), qa_fail_rate=0.0)
    assert passed.passed and passed.findings == [] and "FR-3" in passed.result.response
    failed = ask(out.QaOutput, qa_brief(dev.files), qa_fail_rate=1.0)
    assert not failed.passed and 1 <= len(failed.findings) <= 2
    assert all(f.startswith("FR-3") for f in failed.findings)
    assert ask(out.QaOutput, qa_brief(dev.files), qa_fail_rate=1.0) == failed


def test_qa_fails_on_real_problems_whatever_the_rate() -> None:
    dev = ask(out.DevOutput, dev_brief())
    empty = [*dev.files, out.FileOutput(path="src/empty.py", content="")]
    reqs = FR3 + "\n- FR-9 (web): The web app shows a task's activity history."
    qa = ask(out.QaOutput, qa_brief(empty, reqs=reqs), qa_fail_rate=0.0)
    assert not qa.passed
    assert "src/empty.py is empty." in qa.findings
    assert any(f.startswith("FR-9") for f in qa.findings)
    broken = [out.FileOutput(path="src/auth.py", content="# FR-3\ndef broken(:\n")]
    assert not ask(out.QaOutput, qa_brief(broken)).passed


def test_deploy_runs_a_smoke_test_per_kind_and_fails_on_an_empty_artifact() -> None:
    dev = ask(out.DevOutput, dev_brief(files=("src/auth.py", "tests/test_auth.py", "x.md")))
    facts = {"project": "task-tracker", "squad": "backend"}
    ok = ask(out.DeployOutput, brief(facts, [("Artifacts", artifacts(dev.files))]))
    names = [t.name for t in ok.smoke_tests]
    assert names == ["import src/auth.py", "collect python tests", "docs render", "health check"]
    assert all(t.passed for t in ok.smoke_tests)
    assert "src/auth.py" in ok.release_notes_markdown and "FR-3" in ok.release_notes_markdown
    empty = [*dev.files, out.FileOutput(path="web/index.html", content="")]
    bad = ask(out.DeployOutput, brief(facts, [("Artifacts", artifacts(empty))]))
    assert not all(t.passed for t in bad.smoke_tests)


def test_reports_list_delivered_and_failed_work() -> None:
    tasks = "- backend-1 (FR-1): passed\n- backend-2 (FR-2): rework_exhausted\n- backend-3: done"
    squad = ask(out.ReportOutput, brief({"project": "task-tracker", "squad": "backend"},
                                        [("Tasks", tasks)]))
    assert squad.summary.startswith("Squad backend: 2 task(s) delivered, 1 failed")
    assert "backend-2" in squad.result.suggestions
    final = ask(out.ReportOutput, brief({"project": "task-tracker", "delivered": "backend, web"}))
    assert final.summary == "Project task-tracker: 2 squad(s) delivered, 0 failed."
    assert "- web" in final.result.response


def test_fix_task_and_dependency_answer_come_from_the_context() -> None:
    facts = {"project": "task-tracker", "squad": "backend", "block": "B-1", "reported_by": "web"}
    fix = ask(out.FixTaskOutput, brief(facts, [
        ("Block", "web-1 (FR-7) needs the sign-in API contract of backend."),
        ("Requirements", FR3)]))
    assert fix.title.startswith("Fix B-1") and fix.requirements == ["FR-3"]
    assert fix.expected_files == ["fixes/b-1.md"]
    scope = "The backend squad delivers FR-3: sign in with email and password, session tokens."
    answer = ask(out.DependencyAnswer, brief(
        {"project": "task-tracker", "to_squad": "backend", "need": "the sign-in session token"},
        [("Scope", scope)]))
    assert f"> {scope}" in answer.answer


def test_same_inputs_give_identical_outputs() -> None:
    config: dict[str, Any] = {"qa_fail_rate": 0.5, "blocker_rate": 0.5,
                              "dependency_request_rate": 0.5}
    board = [("Requirements", "- FR-6 (web): The web app shows a board.")]
    texts: list[tuple[type[BaseModel], str]] = [
        (out.SpecReviewOutput, brief({"project": "p"}, [("Spec: s.md", EXAMPLE)])),
        (out.DevOutput, dev_brief()),
        (out.BacklogOutput, brief({"project": "p", "squad": "web", "depends_on": "api"}, board)),
    ]
    for model, text in texts:
        first = ask(model, text, **config)
        second = ask(model, text, **config)
        assert first.model_dump_json() == second.model_dump_json()
    decisions = {ask(out.QaOutput, qa_brief(ask(out.DevOutput, dev_brief()).files, attempt=a),
                     qa_fail_rate=0.5).passed for a in range(1, 9)}
    assert decisions == {True, False}


def test_a_mobile_and_infrastructure_spec_gets_fitting_squads() -> None:
    rev = review(MOBILE_SPEC)
    assert rev.title == "Field notes"
    assert {r.id: r.area for r in rev.requirements}["FR-1"] == "mobile"
    prop = ask(out.ProposalOutput, brief({"project": "field-notes"},
                                         [("Requirements", req_lines(rev))]))
    squads = {s.name: s for s in prop.squads}
    assert set(squads) == {"mobile", "infrastructure"}
    assert squads["infrastructure"].depends_on == [] and squads["mobile"].depends_on == []
    assert "NFR-2" in squads["mobile"].requirements
    files = []
    for name, squad in squads.items():
        sections = [("Requirements", req_lines(rev, squad.requirements))]
        backlog = ask(out.BacklogOutput, brief({"project": "field-notes", "squad": name}, sections))
        files += [p for t in leaves(backlog.tasks) for p in t.expected_files]
    assert any(p.endswith(".ts") for p in files)
    assert {p.rsplit(".", 1)[-1] for p in files} >= {"ts", "tf", "yml", "yaml"}
    assert not any(p.endswith(".py") for p in files)


GARBAGE = ["", "\x00\x01 garbage", "[TASK]\n\n[EXPECTED RETURN]\n", "## Facts\nround: x\n" * 3,
           "[TASK]\nx\n[RELEVANT COMPLETE CONTEXT]\n## Artifacts\n### a/b.py\n```\n",
           "- FR-1 (nowhere): \n- NFR-\n| FR-2 | | |\n## Spec: \n# \n;;;.", "é" * 500]


@pytest.mark.parametrize("model", [
    out.SpecReviewOutput, out.ProposalOutput, out.ProposalDecision, out.BacklogOutput,
    out.DevOutput, out.QaOutput, out.DeployOutput, out.ReportOutput, out.FixTaskOutput,
    out.DependencyAnswer])
def test_garbage_gives_a_valid_output_or_a_provider_error(model: type[BaseModel]) -> None:
    provider = OfflineProvider(OfflineConfig(qa_fail_rate=0.5, blocker_rate=1.0,
                                             dependency_request_rate=1.0))
    for text in GARBAGE:
        try:
            result = ask(model, text, provider)
        except ProviderError:
            continue
        assert model.model_validate(result.model_dump()) == result
    assert provider.complete("x", [], model, CallMeta("p", "x", "k")).output is not None


def test_an_unknown_output_model_is_a_provider_error() -> None:
    class Other(BaseModel):
        value: int

    with pytest.raises(ProviderError, match="cannot answer Other"):
        ask(Other, brief({"project": "p"}))


def test_outputs_hold_no_timestamps() -> None:
    dev = ask(out.DevOutput, dev_brief())
    text = dev.model_dump_json()
    assert not re.search(r"20\d\d-\d\d-\d\dT\d\d:\d\d", text.replace("2030-01-01T00:00:00Z", ""))
