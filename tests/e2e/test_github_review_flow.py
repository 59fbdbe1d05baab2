"""A project of a spec the tests have not seen, reviewed through pull requests: the offline
team works until its tasks wait for review, `orch github sync` opens one draft pull request
per task, a person's "request changes" sends one back (its next attempt reuses the same pull
request), approvals merge the rest, and the project completes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_orch
from tests.support.fake_github import FakeGitHub

SPEC = """\
# Tool library

Neighbours borrow each other's tools.

- FR-1: A member lists a tool they lend, with its condition.
- FR-2: A member borrows a listed tool and returns it by a date.
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def tasks(root: Path) -> dict[str, str]:
    project = json.loads(run_orch(root, "status", "--json").stdout)["projects"][0]
    return {t["id"]: t["status"] for t in project["tasks"]}


def test_a_project_is_reviewed_and_completed_through_pull_requests(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    run_orch(root, "init")
    config = root / ".orchestrator" / "config.yaml"
    config.write_text(config.read_text()
                      + "review: {mode: human, host: github, max_open_prs: 20}\n")
    (root / "specs" / "tools.md").write_text(SPEC)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a spec, reviewed on GitHub")
    run_orch(root, "run")
    waiting = tasks(root)
    assert waiting and set(waiting.values()) == {"in_review"}, waiting

    with FakeGitHub(owner="acme", repo="tools") as gh:
        gh.add_user("alice", permission="write")
        env = {"GITHUB_TOKEN": gh.token, "GITHUB_API_URL": gh.base_url,
               "GITHUB_REPOSITORY": "acme/tools"}
        run_orch(root, "github", "sync", env=env)
        assert len(gh.open_pulls()) == len(waiting)
        number = {p["head"].rsplit("/", 1)[1]: n for n, p in gh.pulls.items()}
        assert set(number) == set(waiting)
        first = sorted(waiting)[0]
        gh.submit_review(number[first], "alice", "CHANGES_REQUESTED", "", comments=[
            ("README.md", 1, "Say who may borrow."), ("README.md", 2, "And for how long."),
            ("README.md", 3, "Link the spec.")])
        out = run_orch(root, "github", "sync", env=env).stdout
        assert "one rework with 3 findings" in out
        assert tasks(root)[first] == "qa_failed"

        run_orch(root, "run")  # the rework, with the three findings in its brief
        assert tasks(root)[first] == "in_review"
        assigned = [e for e in json.loads(run_orch(root, "log", "--json", "--type",
                                                   "task.assigned").stdout)
                    if e["payload"]["task_id"] == first and e["payload"]["reason"] == "rework"]
        assert assigned and "Link the spec." in assigned[-1]["payload"]["brief"] + " ".join(
            assigned[-1]["payload"]["findings"])
        run_orch(root, "github", "sync", env=env)
        assert len(gh.pulls) == len(waiting)  # the same pull request, reused
        qa_comments = [r for r in gh.reviews[number[first]] if r["state"] == "COMMENTED"]
        assert len(qa_comments) == 2  # QA's report of each attempt, once each

        for task, n in number.items():
            gh.submit_review(n, "alice", "APPROVED", f"{task} looks right")
        run_orch(root, "github", "sync", env=env)
        assert set(tasks(root).values()) == {"passed"}

    run_orch(root, "run")
    project = json.loads(run_orch(root, "status", "--json").stdout)["projects"][0]
    assert project["status"] == "completed"
    assert not git(root, "branch", "--list", "orch/*")  # no branch left behind
    assert json.loads(run_orch(root, "verify", "--json").stdout)["ok"]
