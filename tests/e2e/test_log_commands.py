"""The log commands end to end: a scripted log through `orch emit`, status, --at, verify, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_orch


def status(repo: Path, *args: str) -> dict[str, Any]:
    return json.loads(run_orch(repo, "status", "--json", *args).stdout)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


SCRIPT = [
    ("project.created", ["-p", "title=Scripted"]),
    ("spec.reviewed", []),
    ("cto.engineer.request", []),
    ("engineer.cto.response", []),
    ("charter.created", []),
    ("module.planned", ["-p", "module=backend"]),
    ("task.assigned", ["-p", "task_id=T1", "-p", "module=backend", "-p",
                       "requirements=FR-1,NFR-2"]),
    ("task.completed", ["-p", "task_id=T1"]),
    ("qa.failed", ["-p", "task_id=T1", "-p", "findings=no tests"]),
    ("task.assigned", ["-p", "task_id=T1", "-p", "reason=rework"]),
    ("task.completed", ["-p", "task_id=T1"]),
    ("qa.passed", ["-p", "task_id=T1"]),
    ("task.assigned", ["-p", "task_id=T2", "-p", "module=backend"]),
    ("block.reported", ["-p", "block_id=B1", "-p", "task_id=T2", "-p", "responsible_squad=web",
                        "-p", "description=needs the API"]),
    ("block.resolved", ["-p", "block_id=B1"]),
]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    repo = tmp_path_factory.mktemp("scripted")
    run_orch(repo, "init")
    commits = []
    for type_name, args in SCRIPT:
        run_orch(repo, "emit", type_name, "--project", "demo", *args)
        commits.append(git(repo, "rev-parse", "HEAD"))
    return repo, commits


def test_scripted_log_gives_the_expected_statuses(scripted: tuple[Path, list[str]]) -> None:
    repo, _ = scripted
    [project] = status(repo)["projects"]
    assert project["status"] == "in_progress"
    tasks = {t["id"]: t for t in project["tasks"]}
    assert (tasks["T1"]["status"], tasks["T1"]["attempt"]) == ("passed", 2)
    assert tasks["T1"]["requirements"] == ["FR-1", "NFR-2"]
    assert tasks["T2"]["status"] == "blocked"
    assert project["blocks"][0]["status"] == "resolved"
    assert project["modules"] == [{"name": "backend", "status": "in_progress",
                                   "depends_on": [], "round": 1}]
    assert project["events"] == len(SCRIPT)
    assert project["findings"] == []
    assert set(project["usage"]) >= {"prompt_tokens", "completion_tokens", "cost_usd"}


def test_status_at_an_earlier_commit_gives_the_earlier_state(
    scripted: tuple[Path, list[str]]
) -> None:
    repo, commits = scripted
    at_first_qa = status(repo, "--at", commits[8])["projects"][0]  # after qa.failed
    task = at_first_qa["tasks"][0]
    assert (task["id"], task["status"], task["attempt"]) == ("T1", "qa_failed", 1)
    assert at_first_qa["events"] == 9
    assert status(repo, "--at", commits[0])["projects"][0]["status"] == "created"


def test_every_commit_carries_trailers(scripted: tuple[Path, list[str]]) -> None:
    repo, commits = scripted
    body = git(repo, "log", "-1", "--format=%B", commits[8])
    assert "Orch-Event:" in body and "Orch-Actor: qa" in body


def test_log_lists_events_and_filters_by_type(scripted: tuple[Path, list[str]]) -> None:
    repo, _ = scripted
    events = json.loads(run_orch(repo, "log", "demo", "--json", "--type", "qa.failed").stdout)
    assert [e["type"] for e in events] == ["qa.failed"]
    assert "task.assigned" in run_orch(repo, "log").stdout


def test_fresh_log_verifies_clean(scripted: tuple[Path, list[str]]) -> None:
    repo, _ = scripted
    proc = run_orch(repo, "verify", "--json")
    assert json.loads(proc.stdout) == {"ok": True, "findings": [], "forced": []}


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_verify_names_an_event_file_changed_after_its_commit(
    tmp_path: Path, tamper: str
) -> None:
    run_orch(tmp_path, "init")
    for type_name, args in SCRIPT[:4]:
        run_orch(tmp_path, "emit", type_name, "--project", "demo", *args)
    victim = sorted((tmp_path / ".orchestrator/events/demo/0000").glob("*spec.reviewed*"))[0]
    rel = victim.relative_to(tmp_path).as_posix()
    if tamper == "edit":
        text = victim.read_text()
        assert 'summary: ""' in text
        victim.write_text(text.replace('summary: ""', 'summary: "forged"'))
    else:
        victim.unlink()
    git(tmp_path, "commit", "-qam", f"{tamper} an event")
    proc = run_orch(tmp_path, "verify", check=False)
    assert proc.returncode == 1
    assert rel in proc.stdout
    assert ("modified" if tamper == "edit" else "deleted") in proc.stdout


def test_errors_are_one_line_with_a_nonzero_exit(tmp_path: Path) -> None:
    outside = run_orch(tmp_path, "status", check=False)
    assert outside.returncode != 0
    assert outside.stderr.startswith("Error: ") and outside.stderr.count("\n") == 1
    assert "orch init" in outside.stderr
    run_orch(tmp_path, "init")
    before = git(tmp_path, "rev-parse", "HEAD")
    for args in (["status", "nope"], ["emit", "task.completed", "--project", "nope", "-p",
                                      "task_id=T1"],
                 ["emit", "cto.engineer.request", "--project", "x", "-p", "round=abc"],
                 ["emit", "no.such.type", "--project", "x"],
                 ["emit", "project.created", "--project", "Bad Name"],
                 ["status", "--at", "no-such-rev"]):
        proc = run_orch(tmp_path, *args, check=False)
        assert proc.returncode != 0, args
        assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert git(tmp_path, "rev-parse", "HEAD") == before  # nothing was written


def test_init_is_idempotent_and_schema_lists_every_type(tmp_path: Path) -> None:
    run_orch(tmp_path, "init")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert "already" in run_orch(tmp_path, "init").stdout
    assert git(tmp_path, "rev-parse", "HEAD") == head
    schema = json.loads(run_orch(tmp_path, "schema").stdout)
    assert {"project.created", "pm.cto.dependency_request", "qa.failed"} <= set(schema["events"])
    assert schema["envelope"]["type"] == "object"
