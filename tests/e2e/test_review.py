"""Review through `orch`, on a spec written here: with `review: human` a run stops with its
tasks in review; `orch reject` sends exactly one back, which passes its next attempt with
the message in its brief; `orch approve` of each lets the project complete, every task's
commits on its own branch, `git log --first-parent main` event commits and merges only,
and no branch left."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import run_orch

SPEC = """\
# Greenhouse vents

## Backend

- FR-1: The backend stores each vent with its name and the temperature that opens it.
- FR-2: The backend lists the vents that are open at a given temperature.
- FR-3: The backend records when a vent was last serviced.
"""
MESSAGE = "Name the listing function open_vents_at and say which unit the temperature is in"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def tasks(repo: Path) -> dict[str, dict[str, Any]]:
    view = json.loads(run_orch(repo, "status", "--json").stdout)["projects"][0]
    return {t["id"]: t for t in view["tasks"]}


def events(repo: Path, *types: str) -> list[dict[str, Any]]:
    args = [a for t in types for a in ("--type", t)]
    return list(json.loads(run_orch(repo, "log", "vents", *args, "--json").stdout))


def test_human_review_stops_rejects_one_approves_all_and_leaves_no_branch(
        tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run_orch(repo, "init")
    git(repo, "config", "user.name", "Pat Reviewer")
    git(repo, "config", "user.email", "pat@example.invalid")
    (repo / ".orchestrator" / "config.yaml").write_text(
        "max_decomposition_depth: 0\nreview: human\nllm:\n  provider: offline\n")
    (repo / "specs" / "vents.md").write_text(SPEC)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "spec")

    out = run_orch(repo, "run").stdout
    assert "wait for review" in out
    waiting = tasks(repo)
    assert waiting and {t["status"] for t in waiting.values()} == {"in_review"}
    listed = json.loads(run_orch(repo, "review", "vents", "--json").stdout)["waiting"]
    assert sorted(i["task"] for i in listed) == sorted(waiting)
    for item in listed:
        assert item["branch"] == f"orch/vents/{item['task']}"
        assert item["files"] and item["lines_added"] > 0 and item["verdict"].startswith("passed")
        # the task's files are on its branch, not yet on main
        assert git(repo, "ls-tree", "-r", "--name-only", item["branch"], "--", item["files"][0])
        assert not (repo / item["files"][0]).exists()
    text = run_orch(repo, "review").stdout
    assert all(i["branch"] in text for i in listed)

    rejected, *approved = sorted(waiting)
    assert run_orch(repo, "reject", "vents", rejected, "-m", MESSAGE).returncode == 0
    for task in approved:
        assert "merged into main" in run_orch(repo, "approve", "vents", task, "-m", "ok").stdout
    after = tasks(repo)
    assert after[rejected]["status"] == "qa_failed"
    assert all(after[t]["status"] == "passed" for t in approved)
    bad = run_orch(repo, "approve", "vents", approved[0], check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not in review" in bad.stderr

    run_orch(repo, "run")
    again = tasks(repo)
    assert again[rejected]["status"] == "in_review" and again[rejected]["attempt"] == 2
    assert all(again[t]["attempt"] == 1 for t in approved)  # exactly that one went back
    rework = [e for e in events(repo, "task.assigned")
              if e["payload"]["task_id"] == rejected and e["payload"]["reason"] == "rework"]
    assert len(rework) == 1 and rework[0]["payload"]["findings"] == [MESSAGE]
    done = [e for e in events(repo, "task.completed") if e["payload"]["task_id"] == rejected]
    assert MESSAGE in done[-1]["payload"]["result"]  # the Dev's second brief carried it

    run_orch(repo, "approve", "vents", rejected)
    out = run_orch(repo, "run").stdout
    assert "vents: completed" in out
    assert git(repo, "branch", "--list", "orch/*") == ""
    merges = events(repo, "task.merged")
    assert sorted(e["payload"]["task_id"] for e in merges) == sorted(waiting)
    approvals = events(repo, "review.approved")
    assert {e["payload"]["by"] for e in approvals} == {"Pat Reviewer"}
    # first parents: event commits and merges only; the Devs' commits are reached only
    # through the merges' second parents, each named for its task and attempt
    first = git(repo, "rev-list", "--first-parent", "main").split()
    for line in git(repo, "log", "--first-parent", "--format=%P|%s", "main").splitlines():
        parents, subject = line.split("|", 1)
        assert subject.startswith(("[vents]", "orch init", "spec")), subject
        assert len(parents.split()) < 2 or "task.merged" in subject
    devs = [c for c in git(repo, "rev-list", "main").split() if c not in first]
    subjects = [git(repo, "log", "-1", "--format=%s", c) for c in devs]
    assert len(devs) == len(waiting) + 1  # one commit per attempt, the rejected task's two
    assert all("dev.backend" in s and "attempt" in s for s in subjects)
    assert sum(f"{rejected} attempt" in s for s in subjects) == 2
    assert run_orch(repo, "verify").returncode == 0
    assert "Nothing waits" in run_orch(repo, "review").stdout


def test_a_conflict_with_main_goes_back_as_rework_and_keeps_both_sides(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run_orch(repo, "init")
    (repo / ".orchestrator" / "config.yaml").write_text(
        "max_decomposition_depth: 0\nreview: {mode: human}\nllm:\n  provider: offline\n")
    (repo / "specs" / "vents.md").write_text(
        "# Vents\n\n## Backend\n\n- FR-1: The backend stores each vent with its name.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "spec")
    run_orch(repo, "run")
    (item,) = json.loads(run_orch(repo, "review", "--json").stdout)["waiting"]
    path = next(p for p in item["files"] if "/tests/" not in p)
    # a person writes the same file on main meanwhile
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text("# Kept by the person: vents close at night.\n")
    git(repo, "add", path)
    git(repo, "commit", "-qm", "a person's note")

    out = run_orch(repo, "approve", "vents", item["task"]).stdout
    assert "conflicts" in out and path in out
    assert (repo / path).read_text() == "# Kept by the person: vents close at night.\n"
    (conflict,) = events(repo, "merge.conflicted")
    assert conflict["payload"]["paths"] == [path]
    run_orch(repo, "run")
    (again,) = json.loads(run_orch(repo, "review", "--json").stdout)["waiting"]
    assert again["attempt"] == 2
    run_orch(repo, "approve", "vents", item["task"])
    assert "vents: completed" in run_orch(repo, "run").stdout
    merged = (repo / path).read_text()
    assert merged.startswith("# Kept by the person: vents close at night.\n")
    assert "FR-1" in merged  # and the task's own code, after it
    assert git(repo, "branch", "--list", "orch/*") == ""
