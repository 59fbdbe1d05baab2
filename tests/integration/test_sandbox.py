"""Generated code runs in bubblewrap: no network, the host read-only, limits on time and
processes; what misbehaves is stopped and reported, and the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.sandbox import NoSandbox, open_sandbox
from orchestrator.core.config import QaConfig, SquadCheck
from orchestrator.core.events import CheckOutcome
from orchestrator.core.verdict import PlannedCheck, plan_checks
from orchestrator.runtime.qa_run import CheckRunner
from tests.support.sandbox import needs_sandbox

MODULE = "def double(n):\n    return 2 * n\n"
LOAD = ("import importlib.util, pathlib\n"
        "spec = importlib.util.spec_from_file_location('m', pathlib.Path(__file__).parents[1] "
        "/ 'src' / 'm.py')\nm = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n")
HOSTILE = {
    "network": "import socket\ndef test_it():\n    socket.create_connection(('192.0.2.1', 80), "
               "timeout=5)\n",
    "escape": "def test_it():\n    open('/etc/orch-escape', 'w').write('x')\n",
    "forkbomb": "import os\ndef test_it():\n    while True:\n        os.fork()\n",
    "forever": "def test_it():\n    while True:\n        pass\n",
}


pytestmark = needs_sandbox


def run(files: dict[str, str], qa: QaConfig,
        squad_files: list[str] | None = None) -> list[CheckOutcome]:
    checks = plan_checks(qa, "core", squad_files or [f.removeprefix("core/") for f in files])
    return CheckRunner(qa).run("p", files, checks)


def test_a_passing_and_a_failing_test_are_told_apart() -> None:
    files = {"core/src/m.py": MODULE,
             "core/tests/test_ok.py": LOAD + "def test_double():\n    assert m.double(2) == 4\n"}
    [ok] = run(files, QaConfig())
    assert ok.status == "passed" and "1 passed" in ok.detail
    files["core/tests/test_ok.py"] += "def test_wrong():\n    assert m.double(2) == 5\n"
    [bad] = run(files, QaConfig())
    assert bad.status == "failed" and "test_wrong" in bad.detail


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_tests_are_stopped_reported_and_the_next_check_still_runs(kind: str) -> None:
    files = {f"core/tests/test_{kind}.py": HOSTILE[kind],
             "core/tests/test_fine.py": "def test_fine():\n    assert True\n"}
    # Five seconds to run: pytest without its plugins starts in under one here, and a
    # fork bomb or an endless loop runs until the limit.
    qa = QaConfig(timeout_s=5, max_processes=64,
                  checks={"core": [SquadCheck(name="after", command="echo still here")]})
    checks = [PlannedCheck("hostile", "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -q -p "
                           f"no:cacheprovider core/tests/test_{kind}.py", "pytest"),
              PlannedCheck("after", "echo still here", "echo")]
    first, after = CheckRunner(qa).run("p", files, checks)
    assert first.status == "failed"
    if kind == "forever":
        assert first.detail.startswith("stopped: still running after 5s")
    assert after.status == "passed" and after.detail == "still here"
    assert not Path("/etc/orch-escape").exists()


def test_a_missing_tool_is_not_run_never_passed() -> None:
    files = {"core/tsconfig.json": "{}", "core/src/a.ts": "export const a = 1;\n"}
    qa = QaConfig(languages={"typescript": None},
                  checks={"core": [SquadCheck(name="lint", command="no-such-tool-orch --all")]})
    [lint] = run(files, qa)
    assert lint.status == "not_run" and lint.detail == "not run: no-such-tool-orch not installed"


def test_without_a_sandbox_nothing_runs_and_the_reason_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoSandbox, match="bwrap is not installed.*qa.sandbox: none"):
        open_sandbox("bwrap", search_path=str(tmp_path))
    assert open_sandbox("none").name == "none"


def test_the_environment_holds_no_secret_of_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    files = {"core/x.txt": "x"}
    checks = [PlannedCheck("env", "env", "env")]
    [env] = CheckRunner(QaConfig(max_output_bytes=20_000)).run("p", files, checks)
    assert env.status == "passed"
    [full] = CheckRunner(QaConfig()).run("p", files, [PlannedCheck("env", "env | grep -c KEY "
                                                                   "|| true", "env")])
    assert full.detail == "0"
