"""The simulated team's Dev, QA review and DevOps answer from typed facts, claim only what
they did, and carry no word of the example specs."""

from __future__ import annotations

import re
from pathlib import Path

import orchestrator
from orchestrator.agents import outputs as out
from orchestrator.core.provider import Facts
from orchestrator.sim.behaviour import derive
from orchestrator.sim.code_model import defect_options
from tests.support.sim_calls import GREENHOUSE, LIBRARY, call, dev_facts

SIM = Path(orchestrator.__file__).parent / "sim"
# The example spec's own vocabulary: what a simulator tuned to it would give away.
EXAMPLE_WORDS = ("tracker", "kanban", "board", "assignee", "password", "sign-in", "signin",
                 "login", "firefox", "chrome", "safari", "spreadsheet", "todo", "doing",
                 "column", "drag", "session", "wcag", "dana")


def test_the_simulator_knows_no_word_of_the_example_specs() -> None:
    for path in sorted(SIM.glob("*.py")):
        text = path.read_text().lower()
        found = [w for w in EXAMPLE_WORDS if re.search(rf"(?<![a-z]){re.escape(w)}(?![a-z])",
                                                       text)]
        assert not found, f"{path.name}: {found}"


def test_behaviour_comes_from_the_requirements_words() -> None:
    trays = derive([r.text for r in GREENHOUSE])
    assert trays.thing == "tray" and trays.choices == ("seedling", "hardening", "planted")
    assert {"add", "update", "count", "sort"} <= set(trays.operations)
    loans = derive([r.text for r in LIBRARY])
    assert loans.limit is not None and loans.limit.high == 21 and loans.limit.unit == "days"
    assert {"find", "remove"} <= set(loans.operations) and not loans.choices
    assert "validate" in defect_options(trays) and "limit" in defect_options(loans)


def test_the_dev_writes_every_expected_file_naming_its_requirements() -> None:
    files = ("src/trays.py", "tests/test_core_trays.py", "docs/trays.md", "infra/trays.tf",
             "site/trays.json")
    dev = call(out.DevOutput, dev_facts(GREENHOUSE, files))
    assert not dev.blocked and [f.path for f in dev.files] == list(files)
    assert all(f.content.strip() and "FR-1" in f.content for f in dev.files)
    assert "FR-2" in dev.result.response


def test_a_test_without_its_module_gets_one_and_typescript_its_config() -> None:
    dev = call(out.DevOutput, dev_facts(LIBRARY, ("tests/test_core_loans.py", "src/app.ts")))
    assert {f.path for f in dev.files} == {"tests/test_core_loans.py", "src/core_loans.py",
                                           "src/app.ts", "tsconfig.json"}


def test_a_defect_only_where_tests_would_catch_it_and_only_on_the_first_attempt() -> None:
    code = ("src/trays.py", "tests/test_core_trays.py")
    def flawed(facts: Facts, **knobs: float) -> bool:
        dev = call(out.DevOutput, facts, **knobs)
        return dev.files[0].content != call(out.DevOutput, facts).files[0].content
    assert flawed(dev_facts(GREENHOUSE, code), qa_fail_rate=1.0)
    assert not flawed(dev_facts(GREENHOUSE, code), qa_fail_rate=0.0)
    assert not flawed(dev_facts(GREENHOUSE, ("src/trays.py", "docs/x.md")), qa_fail_rate=1.0)
    assert not flawed(dev_facts(GREENHOUSE, code, attempt=2, reason="rework"), qa_fail_rate=1.0)
    assert flawed(dev_facts(GREENHOUSE, code, attempt=3, reason="rework"), qa_fail_rate=1.0,
                  rework_fail_rate=1.0)


def test_blocker_follows_its_rate_only_on_a_first_new_attempt_by_an_upstream_squad() -> None:
    first = dev_facts(LIBRARY, ("src/x.js",), squad="site", depends_on=("core",))
    blocked = call(out.DevOutput, first, blocker_rate=1.0)
    assert blocked.blocked and blocked.files == []
    assert blocked.blocker is not None and blocked.blocker.squad == "core"
    assert not call(out.DevOutput, first, blocker_rate=0.0).blocked
    again = dev_facts(LIBRARY, ("src/x.js",), squad="site", depends_on=("core",), attempt=2,
                      reason="rework")
    assert not call(out.DevOutput, again, blocker_rate=1.0).blocked


def qa_facts(files: dict[str, str], **checks: tuple[str, ...]) -> Facts:
    return Facts(values={"project": "p", "squad": "core", "task": "core-1", "attempt": 1,
                         **{f"checks_{k}": v for k, v in checks.items()}},
                 requirements=GREENHOUSE, expected_files=tuple(files), files=files)


def test_the_review_fails_empty_or_unnamed_work_and_claims_to_have_run_nothing() -> None:
    good = qa_facts({"src/a.py": "# FR-1 FR-2\n"}, passed=("python",), not_run=("tsc",))
    review = call(out.QaOutput, good)
    assert review.passed and review.findings == []
    assert "ran nothing" in review.result.additional_info
    assert "not run: tsc" in review.result.additional_info
    bad = call(out.QaOutput, qa_facts({"src/a.py": "# FR-1\n", "src/b.py": " "}))
    assert not bad.passed
    assert bad.findings == ["src/b.py is empty.", "FR-2: no file names FR-2."]


def test_deploy_claims_only_that_the_bundle_is_complete() -> None:
    ok = call(out.DeployOutput, Facts(values={"project": "p", "squad": "core"},
                                      files={"a/x.py": "# FR-1\n"}))
    assert [(t.name, t.passed) for t in ok.smoke_tests] == [("release bundle complete", True)]
    assert "FR-1" in ok.release_notes_markdown
    bad = call(out.DeployOutput, Facts(values={"squad": "core"}, files={"a/x.py": ""}))
    assert not bad.smoke_tests[0].passed
