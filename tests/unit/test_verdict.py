"""Which checks QA plans for a squad's files, and the verdict their outcomes allow."""

from __future__ import annotations

from orchestrator.core.config import LanguageCheck, QaConfig, SquadCheck
from orchestrator.core.events import CheckOutcome
from orchestrator.core.verdict import judge, matches, plan_checks, summary, tool_of


def test_defaults_pick_a_check_per_language_present() -> None:
    files = ["src/a.py", "tests/test_a.py", "tests/a.test.js", "infra/main.tf", "infra/x.tf",
             "tsconfig.json", "src/b.ts", "docs/a.md"]
    planned = {c.name: c for c in plan_checks(QaConfig(), "api", files)}
    assert set(planned) == {"python", "javascript", "terraform api/infra", "typescript api"}
    assert planned["python"].command == "pytest -q -p no:cacheprovider api/tests/test_a.py"
    assert planned["javascript"].command == "node --test api/tests/a.test.js"
    assert planned["typescript api"].tool == "tsc"
    assert "-chdir=api/infra" in planned["terraform api/infra"].command
    assert plan_checks(QaConfig(), "api", ["docs/a.md", "src/a.py"]) == []


def test_config_replaces_or_drops_a_language_and_adds_the_squads_own_checks() -> None:
    qa = QaConfig(languages={"python": LanguageCheck(detect=["**/*.py"],
                                                     command="CI=1 ruff check {files}"),
                             "javascript": None},
                  checks={"*": [SquadCheck(name="lint", command="make lint")],
                          "api": [SquadCheck(name="size", command="du -s .")],
                          "web": [SquadCheck(name="web only", command="true")]})
    planned = plan_checks(qa, "api", ["a.py", "a.test.js"])
    assert [(c.name, c.tool) for c in planned] == [("python", "ruff"), ("lint", "make"),
                                                   ("size", "du")]
    assert planned[0].command == "CI=1 ruff check api/a.py"
    assert planned[1].command == "cd api && make lint"


def test_globs_match_at_any_depth_and_tools_skip_assignments() -> None:
    assert matches("test_a.py", "**/test_*.py") and matches("x/y/test_a.py", "**/test_*.py")
    assert not matches("a_test.txt", "**/test_*.py")
    assert tool_of("A=1 B=2 pytest -q") == "pytest" and tool_of("'unbalanced") == "'unbalanced"


def outcome(name: str, status: str, detail: str = "") -> CheckOutcome:
    return CheckOutcome(name=name, status=status, command=f"run {name}", detail=detail)  # type: ignore[arg-type]


def test_a_failed_check_fails_the_task_whatever_the_review_says() -> None:
    verdict = judge([outcome("python", "failed", "FAILED test_x")], [], True, [])
    assert not verdict.passed
    assert verdict.findings == ["check python failed: `run python`\nFAILED test_x"]


def test_a_check_not_run_neither_passes_nor_fails_and_says_so() -> None:
    results = [outcome("python", "passed"), outcome("tsc", "not_run", "not run: tsc not installed")]
    assert judge(results, [], True, []).passed
    text = summary(results)
    assert "- tsc: not run (not run: tsc not installed)" in text and "python: passed" in text
    assert summary([]) == "No check applies to these files: nothing was run."


def test_missing_files_and_a_failed_review_fail_with_their_findings() -> None:
    verdict = judge([], ["p/a.py"], False, ["FR-1 is not covered"])
    assert verdict.findings == ["expected file missing: p/a.py", "FR-1 is not covered"]
    assert judge([], [], False, []).findings == ["the review did not pass"]
    long = judge([outcome("x", "failed", "y" * 10_000)], [], True, [])
    assert len(long.findings[0]) <= 4000
