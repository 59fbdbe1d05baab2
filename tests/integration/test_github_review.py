"""Review through GitHub pull requests, end to end below the CLI: real git in a temp dir (a
bare remote for the task branches), the real githubkit client against a local GitHub server
keeping state (tests/support/fake_github.py), the log folded after each sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.config_file import load_config
from orchestrator.adapters.github import GitHubError, GitHubHost
from orchestrator.core.state import TaskStatus
from orchestrator.runtime.github_review import sync
from orchestrator.runtime.workspace import Workspace
from tests.support.fake_github import FakeGitHub
from tests.support.review_log import build_in_review, git


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(owner="acme", repo="shop") as gh:
        gh.add_user("alice", permission="write")
        gh.add_user("rita", permission="read")
        gh.add_user("helper[bot]", kind="Bot", permission="write")
        yield gh


def host_for(gh: FakeGitHub) -> GitHubHost:
    return GitHubHost("acme/shop", gh.token, gh.base_url)


def status_of(ws: Workspace, task: str) -> TaskStatus:
    ws.reader.invalidate()
    return ws.reader.states(["shop"])["shop"].tasks[task].status


def test_draft_pulls_carry_the_brief_and_qa_comments_once(tmp_path: Path,
                                                          github: FakeGitHub) -> None:
    root = tmp_path / "repo"
    ws = build_in_review(root, ["t1", "t2"])
    config = load_config(root)
    report = sync(ws, host_for(github), config, remote="origin")
    assert len(report.opened) == 2, report
    pulls = sorted(github.pulls.values(), key=lambda p: p["head"])
    assert [p["head"] for p in pulls] == ["orch/shop/t1", "orch/shop/t2"]
    first = pulls[0]
    assert first["draft"] and first["base"] == "main"
    assert first["body"].startswith("[TASK]\nWrite t1.py")
    assert "[EXPECTED RETURN]" in first["body"] and "/.orchestrator/events/shop" in first["body"]
    # The task branches went to the remote for their pull requests.
    assert git(root, "ls-remote", "origin", "orch/shop/t1")
    comments = github.reviews[first["number"]]
    assert [c["state"] for c in comments] == ["COMMENTED"]  # never APPROVE its own work
    assert "Every requirement is met." in comments[0]["body"]
    # A second run opens nothing and posts nothing twice.
    again = sync(Workspace.open(root), host_for(github), config, remote="origin")
    assert not again.opened and not again.commented
    assert len(github.pulls) == 2 and len(github.reviews[first["number"]]) == 1
    opened = [e for e in Workspace.open(root).reader.events("shop")
              if e.type == "review.pull_opened"]
    assert len(opened) == 2 and all(e.links[0].kind == "pr" for e in opened)


def test_the_cap_on_open_pulls_holds_and_the_rest_queue(tmp_path: Path,
                                                        github: FakeGitHub) -> None:
    root = tmp_path / "repo"
    ws = build_in_review(root, ["t1", "t2", "t3"], cap=2)
    report = sync(ws, host_for(github), load_config(root))
    assert len(github.open_pulls()) == 2
    assert len(report.queued) == 1 and "shop/t3: queued" in report.queued[0]
    view = Workspace.open(root).reader.views(["shop"])["shop"]  # status says so too
    assert view["review_queue"] == ["t3"]
    assert [p["task"] for p in view["pull_requests"]] == ["t1", "t2"]
    # A merge frees a place: the next sync records it and opens the queued one.
    github.merge(1, "alice", method="squash")
    report = sync(Workspace.open(root), host_for(github), load_config(root))
    assert len(github.open_pulls()) == 2 and not report.queued
    assert any(p["head"] == "orch/shop/t3" for p in github.open_pulls())


def test_merge_approval_rework_and_close_become_events(tmp_path: Path,
                                                       github: FakeGitHub) -> None:
    root = tmp_path / "repo"
    ws = build_in_review(root, ["t1", "t2", "t3", "t4"])
    host = host_for(github)
    config = load_config(root)
    sync(ws, host, config)
    number = {p["head"].rsplit("/", 1)[1]: n for n, p in github.pulls.items()}

    github.merge(number["t1"], "alice", method="rebase")  # not an ancestor: still merged
    github.submit_review(number["t2"], "helper[bot]", "CHANGES_REQUESTED", "bot says no")
    github.submit_review(number["t2"], "rita", "CHANGES_REQUESTED", "reader says no")
    github.submit_review(number["t2"], "alice", "APPROVED", "ship it")
    review_id = github.submit_review(number["t3"], "alice", "CHANGES_REQUESTED", "", comments=[
        ("project/shop/backend/t3.py", 1, "name the constant"),
        ("project/shop/backend/t3.py", 1, "add a test"),
        ("project/shop/backend/t3.py", None, "docstring, please")])
    github.close(number["t4"])
    report = sync(Workspace.open(root), host, config)
    assert len(report.recorded) == 4, report
    assert sum("ignored" in line for line in report.ignored) == 2  # the bot and the reader

    ws = Workspace.open(root)
    events = ws.reader.events("shop")
    approved = {e.payload.task_id: e.payload for e in events if e.type == "review.approved"}
    assert approved["t1"].merged and approved["t1"].by == "alice"
    assert not approved["t2"].merged and approved["t2"].by == "alice"
    assert status_of(ws, "t1") == TaskStatus.PASSED
    assert status_of(ws, "t2") == TaskStatus.PASSED  # approved on GitHub, merged by orch
    assert (root / "project/shop/backend/t2.py").read_text() == "x = 1\n"
    (rejected,) = [e.payload for e in events if e.type == "review.rejected"]
    assert rejected.task_id == "t3" and rejected.source == "github"
    assert rejected.findings == ["project/shop/backend/t3.py:1: name the constant",
                                 "project/shop/backend/t3.py:1: add a test",
                                 "project/shop/backend/t3.py: docstring, please"]
    assert rejected.ref.endswith(f"#pullrequestreview-{review_id}")
    assert status_of(ws, "t3") == TaskStatus.QA_FAILED  # one rework, with the three findings
    assert status_of(ws, "t4") == TaskStatus.ABANDONED
    state = ws.reader.states(["shop"])["shop"]
    assert [a.kind for a in state.alerts if a.task_id == "t4"] == ["review_abandoned"]

    # Nothing is recorded twice, however often the sync runs.
    assert not sync(ws, host, config).recorded
    assert len([e for e in ws.reader.events("shop") if e.type == "review.rejected"]) == 1


def test_a_repository_without_drafts_gets_a_ready_pull_and_errors_name_the_call(
        tmp_path: Path, github: FakeGitHub) -> None:
    root = tmp_path / "repo"
    ws = build_in_review(root, ["t1"])
    github.drafts_supported = False
    sync(ws, host_for(github), load_config(root))
    (only,) = github.pulls.values()
    assert not only["draft"] and only["body"].startswith("[TASK]")
    # A head GitHub does not have: that task is named, the others go on.
    (tmp_path / "second").mkdir()
    build_in_review(tmp_path / "second" / "repo", ["t5", "t6"])
    github.known_heads = {"orch/shop/t6"}
    ws2 = Workspace.open(tmp_path / "second" / "repo")
    report = sync(ws2, host_for(github), load_config(ws2.root))
    assert len(report.opened) == 1 and "#2" in report.opened[0]
    assert len(report.failed) == 1 and report.failed[0].startswith("shop/t5: no pull request")
    bad = GitHubHost("acme/shop", "not-the-token", github.base_url)
    with pytest.raises(GitHubError) as caught:
        bad.pull(1)
    message = str(caught.value)
    assert "GET /pulls/1" in message and "401" in message and "not-the-token" not in message
