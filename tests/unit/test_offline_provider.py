"""The offline provider: real, deterministic answers for every kind of call, on any spec."""

from __future__ import annotations

import re
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
from orchestrator.core.requirements import defined_requirements
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


def req_lines(rev: out.SpecReviewOutput, ids: list[str] | None = None,
              spec: str = EXAMPLE) -> str:
    """The requirements as the CTO hands them on: the review's areas, the spec's words."""
    words = {r.id: r.text for r in defined_requirements(spec)}
    return "\n".join(f"- {r.id} ({r.area}): {words.get(r.id, '')}" for r in rev.requirements
                      if ids is None or r.id in ids)


def owned(prop: out.ProposalOutput, squad: str) -> list[str]:
    return [o.requirement for o in prop.owners if o.squad == squad]


def backend_backlog(**config: Any) -> out.BacklogOutput:
    rev = review()
    prop = ask(out.ProposalOutput, brief({"project": "task-tracker"}, [("Requirements",
                                                                        req_lines(rev))]))
    squad = next(s for s in prop.squads if s.name == "backend")
    facts = {"project": "task-tracker", "squad": "backend", "squads": "backend, web",
             "round": 1, "max_depth": config.pop("max_depth", 1)}
    return ask(out.BacklogOutput, brief(facts, [("Requirements",
                                                 req_lines(rev, owned(prop, squad.name)))]),
               **config)


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


def test_review_finds_every_requirement_with_its_area() -> None:
    rev = review()
    assert rev.title == "Task tracker for small teams"
    assert [r.id for r in rev.requirements] == ALL_IDS
    areas = {r.id: r.area for r in rev.requirements}
    assert {areas[f"FR-{n}"] for n in range(1, 6)} == {"backend"}
    assert {areas[f"FR-{n}"] for n in range(6, 10)} == {"web"}
    assert (areas["NFR-1"], areas["NFR-3"], areas["NFR-4"]) == ("backend", "web", "infrastructure")
    assert rev.areas[:2] == ["backend", "web"]
    assert "## Requirements by area" in rev.understood_spec_markdown
    assert any(q.startswith("NFR-2") for q in rev.open_questions)


def test_review_reads_headings_tables_and_bold_ids() -> None:
    spec = ("# Notes\n\n## Web\n\n### FR-1: Create notes\n\nUsers create notes with a title.\n\n"
            "## Other\n\n**FR-2**: The API stores notes in a database.\n\n"
            "| id | area | text |\n|---|---|---|\n| FR-3 | mobile | The app lists notes |\n")
    rev = review(spec)
    assert [(r.id, r.area) for r in rev.requirements] == [
        ("FR-1", "web"), ("FR-2", "backend"), ("FR-3", "mobile")]


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
    assert [o.requirement for o in prop.owners] == ALL_IDS  # each once, in the spec's order
    assert {o.squad for o in prop.owners} == set(squads)
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


def test_a_mobile_and_infrastructure_spec_gets_fitting_squads() -> None:
    rev = review(MOBILE_SPEC)
    assert rev.title == "Field notes"
    assert {r.id: r.area for r in rev.requirements}["FR-1"] == "mobile"
    prop = ask(out.ProposalOutput, brief({"project": "field-notes"},
                                         [("Requirements", req_lines(rev, spec=MOBILE_SPEC))]))
    squads = {s.name: s for s in prop.squads}
    assert set(squads) == {"mobile", "infrastructure"}
    assert squads["infrastructure"].depends_on == [] and squads["mobile"].depends_on == []
    assert "NFR-2" in owned(prop, "mobile")
    files = []
    for name in squads:
        sections = [("Requirements", req_lines(rev, owned(prop, name), MOBILE_SPEC))]
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
