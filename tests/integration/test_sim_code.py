"""The simulated Dev's code runs: its tests pass from every folder a person would run them
from, a seeded defect is caught by them, and the rework fixes it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.agents import outputs as out
from tests.support.sim_calls import GREENHOUSE, LIBRARY, call, dev_facts, write

PY = ("src/trays.py", "tests/test_core_trays.py")
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def pytest_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PYTEST, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def test_python_tests_pass_from_the_squad_the_project_and_the_repository(tmp_path: Path) -> None:
    project = tmp_path / "project" / "p"
    write(project / "core", call(out.DevOutput, dev_facts(GREENHOUSE, PY)).files)
    write(project / "site", call(out.DevOutput, dev_facts(
        LIBRARY, ("src/books.py", "tests/test_site_books.py"), squad="site")).files)
    for cwd, args in ((project / "core", ()), (project, ()), (tmp_path, ("project",))):
        run = pytest_in(cwd, *args)
        assert run.returncode == 0, run.stdout + run.stderr
        assert re.search(r"\b\d+ passed\b", run.stdout)


def test_a_seeded_defect_fails_a_named_test_and_the_rework_fixes_it(tmp_path: Path) -> None:
    first = call(out.DevOutput, dev_facts(GREENHOUSE, PY), qa_fail_rate=1.0)
    write(tmp_path / "a", first.files)
    failing = pytest_in(tmp_path / "a")
    assert failing.returncode == 1
    names = re.findall(r"FAILED \S+::(test_\w+)", failing.stdout + "\n" + pytest_in(
        tmp_path / "a", "-rf").stdout)
    assert names, failing.stdout
    finding = f"check python failed: {names[0]}"
    again = call(out.DevOutput, dev_facts(GREENHOUSE, PY, attempt=2, reason="rework",
                                          findings=(finding,)), qa_fail_rate=1.0)
    assert finding in again.result.response
    write(tmp_path / "b", again.files)
    assert pytest_in(tmp_path / "b").returncode == 0
    stubborn = call(out.DevOutput, dev_facts(GREENHOUSE, PY, attempt=2, reason="rework"),
                    qa_fail_rate=1.0, rework_fail_rate=1.0)
    write(tmp_path / "c", stubborn.files)
    assert pytest_in(tmp_path / "c").returncode == 1


def test_two_unrelated_specs_get_code_that_differs_in_more_than_names() -> None:
    def shape(reqs: tuple) -> tuple[set[str], set[str]]:
        dev = call(out.DevOutput, dev_facts(reqs, PY))
        code = next(f.content for f in dev.files if f.path == PY[0])
        tests = next(f.content for f in dev.files if f.path == PY[1])
        return set(re.findall(r"def (\w+)\(", code)), set(re.findall(r"def (test_\w+)", tests))
    (methods_a, tests_a), (methods_b, tests_b) = shape(GREENHOUSE), shape(LIBRARY)
    assert methods_a != methods_b and tests_a != tests_b
    assert {"count_by", "newest_first"} <= methods_a and {"find", "remove"} <= methods_b


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_javascript_tests_pass_under_node_test_and_a_defect_fails_them(tmp_path: Path) -> None:
    files = ("src/loans.js", "src/loans.html", "tests/loans.test.js")
    for rate, code in ((0.0, 0), (1.0, 1)):
        dev = call(out.DevOutput, dev_facts(LIBRARY, files), qa_fail_rate=rate)
        root = tmp_path / str(rate)
        write(root, dev.files)
        run = subprocess.run(["node", "--test", "tests/loans.test.js"], cwd=root,
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == code, run.stdout + run.stderr
        assert '<script src="loans.js">' in (root / "src/loans.html").read_text()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_of_two_tasks_in_one_folder_validates(tmp_path: Path) -> None:
    for task, name in (("core-1", "trays"), ("core-2", "benches")):
        write(tmp_path, call(out.DevOutput, dev_facts(
            GREENHOUSE, (f"infra/{name}.tf",), task=task)).files)
    for step in (["init", "-backend=false", "-input=false", "-no-color"], ["validate"]):
        run = subprocess.run(["terraform", *step], cwd=tmp_path / "infra", capture_output=True,
                             text=True, timeout=120, check=False, env={
                                 "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
                                 "CHECKPOINT_DISABLE": "1"})
        assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.skipif(shutil.which("tsc") is None, reason="tsc (TypeScript) is not installed")
def test_typescript_type_checks(tmp_path: Path) -> None:
    dev = call(out.DevOutput, dev_facts(LIBRARY, ("src/loans.ts", "tests/loans.test.ts")))
    assert "tsconfig.json" in {f.path for f in dev.files}
    write(tmp_path, dev.files)
    run = subprocess.run(["tsc", "--noEmit", "-p", "."], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
