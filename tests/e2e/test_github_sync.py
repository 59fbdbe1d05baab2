"""`orch github sync` as a workflow runs it: the token and the API from the environment, the
webhook payload from --event-path, one `Error:` line when something is missing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_orch
from tests.support.fake_github import FakeGitHub
from tests.support.review_log import build_in_review, git


def test_sync_through_the_command_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    build_in_review(root, ["t1"])
    with FakeGitHub(owner="acme", repo="shop", token="s3cret-token-value") as gh:
        gh.add_user("alice", permission="write")
        env = {"GITHUB_TOKEN": gh.token, "GITHUB_API_URL": gh.base_url,
               "GITHUB_REPOSITORY": "acme/shop"}
        out = json.loads(run_orch(root, "github", "sync", "--json", env=env).stdout)
        assert len(out["opened"]) == 1 and len(out["commented"]) == 1

        # A review by a bot: the webhook is ignored before any call to GitHub.
        number = gh.submit_review(1, "orch-app", "COMMENTED", "noise")
        calls = len(gh.requests)
        payload = {"action": "submitted", "repository": {"full_name": "acme/shop"},
                   "pull_request": {"number": 1, "head": {"ref": "orch/shop/t1"}},
                   "review": {"id": number, "user": {"login": "ci[bot]", "type": "Bot"}},
                   "sender": {"login": "ci[bot]", "type": "Bot"}}
        event = tmp_path / "event.json"
        event.write_text(json.dumps(payload))
        proc = run_orch(root, "github", "sync", "--event-path", str(event), env=env)
        assert "ignored" in proc.stdout and len(gh.requests) == calls

        # A person's change request, named by its webhook: one rework.
        gh.submit_review(1, "alice", "CHANGES_REQUESTED", "Rename x.")
        payload.update(review={"id": 0, "user": {"login": "alice", "type": "User"}},
                       sender={"login": "alice", "type": "User"})
        event.write_text(json.dumps(payload))
        proc = run_orch(root, "github", "sync", "--event-path", str(event), env=env)
        assert "changes requested: one rework with 1 findings" in proc.stdout
        status = json.loads(run_orch(root, "status", "--json").stdout)["projects"][0]
        assert [t["status"] for t in status["tasks"]] == ["qa_failed"]
        assert all(r.authorization.endswith(gh.token) for r in gh.requests)

    # The token is in no commit, event or output.
    history = git(root, "log", "-p", "--all")
    assert gh.token not in history and gh.token not in proc.stdout + proc.stderr


def test_missing_token_and_bad_payload_are_one_error_line(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    build_in_review(root, ["t1"])
    proc = run_orch(root, "github", "sync", check=False,
                    env={"GITHUB_TOKEN": "", "GH_TOKEN": "", "GITHUB_REPOSITORY": "a/b"})
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Error: no GitHub token: set GITHUB_TOKEN or GH_TOKEN in "
                                   "the environment")
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    proc = run_orch(root, "github", "sync", "--event-path", str(bad), check=False,
                    env={"GITHUB_TOKEN": "x"})
    assert proc.returncode == 2 and proc.stderr.startswith("Error: the event payload")
    assert len(proc.stderr.strip().splitlines()) == 1
    # Without review.host: github, a workflow's --if-configured does nothing.
    (root / ".orchestrator" / "config.yaml").write_text("review: human\n")
    subprocess.run(["git", "commit", "-qam", "local review"], cwd=root, check=True)
    proc = run_orch(root, "github", "sync", "--if-configured")
    assert "nothing to sync" in proc.stdout
    proc = run_orch(root, "github", "sync", check=False)
    assert proc.returncode == 2 and "review.host is 'local'" in proc.stderr
