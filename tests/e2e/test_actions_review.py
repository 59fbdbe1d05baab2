"""The workflow's review job under act (self-hosted, no network): a `pull_request_review`
webhook payload of a person's "request changes" becomes, against the local GitHub server,
one rework with every comment of the review, pushed to the remote's log. One scenario, kept
lean: the other transitions are the same code, tested below the workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.adapters.config_file import load_config
from orchestrator.adapters.github import GitHubHost
from orchestrator.runtime.github_review import sync
from tests.conftest import run_orch
from tests.e2e.test_actions import PINNED, STAND_INS, act
from tests.support.fake_github import FakeGitHub
from tests.support.review_log import build_in_review, git

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_pull_request_review_drives_a_rework_through_the_workflow(tmp_path: Path) -> None:
    act_bin = act()
    seed = tmp_path / "seed"
    ws = build_in_review(seed, ["t1"])
    workflows = seed / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".github" / "workflows" / "orch.yml", workflows / "orch.yml")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "the workflow")
    origin = tmp_path / "origin.git"
    with FakeGitHub(owner="acme", repo="shop") as gh:
        gh.add_user("alice", permission="write")
        sync(ws, GitHubHost("acme/shop", gh.token, gh.base_url), load_config(seed),
             remote="origin")
        git(seed, "push", "-q", "origin", "main")
        review_id = gh.submit_review(1, "alice", "CHANGES_REQUESTED", "Not yet.", comments=[
            ("project/shop/backend/t1.py", 1, "name the constant"),
            ("project/shop/backend/t1.py", 1, "and test it")])
        payload = {
            "action": "submitted", "repository": {"full_name": "acme/shop"},
            "pull_request": {"number": 1, "head": {"ref": "orch/shop/t1"},
                             "base": {"ref": "main"}},
            "review": {"id": review_id, "state": "changes_requested",
                       "user": {"login": "alice", "type": "User"}},
            "sender": {"login": "alice", "type": "User"},
        }
        work = tmp_path / "run"
        git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(work))
        event = tmp_path / "event.json"
        event.write_text(json.dumps(payload))
        args = [act_bin, "pull_request_review", "-W", ".github/workflows/orch.yml",
                "-e", str(event), "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
                "--var", "ORCH_PIP_SPEC=orch", "-s", f"GITHUB_TOKEN={gh.token}",
                "--env", f"GITHUB_API_URL={gh.base_url}"]
        for action, folder in PINNED.items():
            args += ["--local-repository", f"{action}={STAND_INS / folder}"]
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        proc = subprocess.run(args, cwd=work, capture_output=True, text=True, env=env,
                              timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "changes requested: one rework with 3 findings" in proc.stdout, proc.stdout[-4000:]
        assert gh.token not in proc.stdout

    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(check))
    log = json.loads(run_orch(check, "log", "shop", "--json", "--type", "review.rejected").stdout)
    assert len(log) == 1
    assert log[0]["payload"]["findings"] == [
        "Not yet.", "project/shop/backend/t1.py:1: name the constant",
        "project/shop/backend/t1.py:1: and test it"]
    status = json.loads(run_orch(check, "status", "--json").stdout)["projects"][0]
    assert [t["status"] for t in status["tasks"]] == ["qa_failed"]
