"""Task branches through a remote: the events naming a branch's commit are pushed with that
commit (atomically), a merge that lost a push race is made again as a merge on what came in,
and one that now conflicts is dropped with its events, never resolved by taking a side."""

from __future__ import annotations

from pathlib import Path

from orchestrator.runtime import review
from orchestrator.runtime.sync import publish, sync
from orchestrator.runtime.workspace import Workspace
from tests.support.review_log import build_in_review, git

API = "project/shop/backend/api.py"


def _clones(tmp_path: Path, tasks: list[str], files: dict[str, dict[str, bytes]] | None = None
            ) -> tuple[Path, Workspace, Workspace]:
    seed = build_in_review(tmp_path / "seed", tasks, files=files)
    publish(seed, "origin")  # the log, and each task branch its task.completed names
    origin = tmp_path / "origin.git"
    for name in ("a", "b"):
        git(tmp_path, "clone", "-q", str(origin), str(tmp_path / name))
    return origin, Workspace.open(tmp_path / "a"), Workspace.open(tmp_path / "b")


def _merges(origin: Path) -> list[tuple[str, str]]:
    """(second parent, subject) of each merge on the remote's main branch, oldest first."""
    out = git(origin, "log", "--first-parent", "--reverse", "--format=%P%x09%s", "main")
    found = []
    for line in out.splitlines():
        parents, _, subject = line.partition("\t")
        if len(parents.split()) == 2:
            found.append((parents.split()[1], subject))
    return found


def test_the_branches_go_with_the_events_that_name_them(tmp_path: Path) -> None:
    origin, a, _ = _clones(tmp_path, ["t1", "t2"])
    state = a.reader.states(["shop"])["shop"]
    for task in ("t1", "t2"):
        head = state.tasks[task].head
        assert git(origin, "rev-parse", f"refs/heads/orch/shop/{task}") == head
        assert a.repo.has_commit(head)  # fetched with the clone: QA anywhere can read it


def test_a_merge_that_lost_the_race_is_made_again_as_a_merge(tmp_path: Path) -> None:
    origin, a, b = _clones(tmp_path, ["t1", "t2"])
    head_t1 = a.reader.states(["shop"])["shop"].tasks["t1"].head
    assert review.approve(a, "shop", "t1", by="alice").merged  # a merge commit, not pushed
    assert review.approve(b, "shop", "t2", by="bob").merged
    publish(b, "origin")

    report = publish(a, "origin")  # lost the race: fetched, the merge made again on top
    assert report.rejections == 1 and report.pushed and not report.dropped
    merges = [second for second, _ in _merges(origin)]
    assert head_t1 in merges and len(merges) == 2
    sync(b, "origin")
    for ws in (a, b):
        view = ws.reader.states(["shop"])["shop"]
        assert all(view.tasks[t].merged for t in ("t1", "t2"))
    assert git(tmp_path / "a", "show", "origin/main:project/shop/backend/t1.py") == "x = 1"
    # Both merged, so neither branch is left on the remote; nor in the view of the clone
    # that pushed last and deleted them (it needs no fetch to know where the remote is).
    assert git(origin, "for-each-ref", "refs/heads/orch/") == ""
    assert git(tmp_path / "a", "for-each-ref", "refs/remotes/origin/orch/") == ""
    assert git(tmp_path / "a", "rev-parse", "origin/main") == git(origin, "rev-parse", "main")


def test_a_merge_that_now_conflicts_is_dropped_and_the_branch_kept(tmp_path: Path) -> None:
    files = {"t1": {API: b"def route():\n    return 'one'\n"},
             "t2": {API: b"def route():\n    return 'two'\n"}}
    origin, a, b = _clones(tmp_path, ["t1", "t2"], files)
    head_t1 = a.reader.states(["shop"])["shop"].tasks["t1"].head
    assert review.approve(a, "shop", "t1", by="alice").merged
    assert review.approve(b, "shop", "t2", by="bob").merged
    publish(b, "origin")

    report = publish(a, "origin")  # all it had was the merge: nothing left to push
    assert any("conflicts with what came in" in d and API in d for d in report.dropped)
    assert [second for second, _ in _merges(origin)] != [] and head_t1 not in [
        second for second, _ in _merges(origin)]
    assert git(tmp_path / "a", "show", f"origin/main:{API}") == "def route():\n    return 'two'"
    # t1 waits for review again; its branch, never merged, is still on the remote.
    t1 = a.reader.states(["shop"])["shop"].tasks["t1"]
    assert t1.status.value == "in_review"
    assert git(origin, "rev-parse", "refs/heads/orch/shop/t1") == head_t1
    # Approved again, the merge finds the conflict: back to its Dev, both sides kept.
    decision = review.approve(a, "shop", "t1", by="alice")
    assert decision.conflicts == (API,)
    publish(a, "origin")
    assert git(origin, "rev-parse", "refs/heads/orch/shop/t1") == head_t1
