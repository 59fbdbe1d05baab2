"""Task branches with real git: committed without the person's index or work tree, merged
into the checked-out branch by a two-parent commit through the index-first committer,
conflicts found before merging and resolved by the Dev's rework, nothing unmerged deleted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.adapters.git_branch import MergeConflictError
from orchestrator.adapters.git_commit import HookRefusedError
from orchestrator.core import events as ev
from orchestrator.core.state import TaskStatus
from orchestrator.errors import UsageError
from orchestrator.runtime import review
from orchestrator.runtime.task_branches import TaskBranches
from orchestrator.runtime.workspace import Workspace

SHARED = "project/p/api/notes.md"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace, _ = Workspace.init(tmp_path)
    git(tmp_path, "config", "user.name", "Pat")
    git(tmp_path, "config", "user.email", "pat@example.invalid")
    return workspace


def test_a_branch_commit_leaves_index_work_tree_and_staged_changes_alone(ws: Workspace) -> None:
    root = ws.root
    (root / "mine.txt").write_text("staged by the person\n")
    git(root, "add", "mine.txt")
    (root / "project" / "README.md").write_text("edited, not staged\n")
    status = git(root, "status", "--porcelain")
    main = ws.repo.head()
    assert main is not None
    head = ws.repo.branches.commit("orch/p/t1", {"project/p/api/a.py": b"A = 1\n"}, "work\n",
                                   start=main)
    assert git(root, "status", "--porcelain") == status
    assert ws.repo.head() == main and ws.repo.branch() == "main"
    assert not (root / "project" / "p").exists()
    assert git(root, "show", f"{head}:project/p/api/a.py") == "A = 1"
    assert git(root, "rev-parse", f"{head}^") == main
    # a second commit (a rework) builds on the first
    again = ws.repo.branches.commit("orch/p/t1", {"project/p/api/a.py": b"A = 2\n"}, "rework\n",
                                    start=main)
    assert git(root, "rev-parse", f"{again}^") == head


def test_a_merge_is_a_two_parent_commit_that_writes_only_the_merged_files(ws: Workspace) -> None:
    root = ws.root
    main = ws.repo.head()
    assert main is not None
    head = ws.repo.branches.commit("orch/p/t1", {"project/p/api/a.py": b"A = 1\n"}, "work\n",
                                   start=main)
    (root / "mine.txt").write_text("staged\n")
    git(root, "add", "mine.txt")
    merge = ws.repo.branches.merge_into_current(head, {".orchestrator/x.yaml": b"x: 1\n"},
                                                "merge t1\n")
    assert git(root, "rev-list", "--parents", "-n1", merge).split() == [merge, main, head]
    assert (root / "project/p/api/a.py").read_text() == "A = 1\n"
    assert git(root, "diff", "--cached", "--name-only") == "mine.txt"  # still staged, not committed
    assert "mine.txt" not in git(root, "show", "--name-only", "--format=", merge)
    assert ws.repo.branches.delete("orch/p/t1", head)
    assert ws.repo.branches.head("orch/p/t1") is None


def test_conflicts_are_found_before_merging_and_nothing_unmerged_is_deleted(
        ws: Workspace) -> None:
    main = ws.repo.head()
    assert main is not None
    one = ws.repo.branches.commit("orch/p/t1", {SHARED: b"one\n"}, "t1\n", start=main)
    two = ws.repo.branches.commit("orch/p/t2", {SHARED: b"two\n"}, "t2\n", start=main)
    ws.repo.branches.merge_into_current(one, {}, "merge t1\n")
    check = ws.repo.branches.check_merge(ws.repo.head() or "", two)
    assert check.conflicts == (SHARED,)
    before = ws.repo.head()
    with pytest.raises(MergeConflictError) as raised:
        ws.repo.branches.merge_into_current(two, {}, "merge t2\n")
    assert raised.value.paths == (SHARED,) and ws.repo.head() == before
    assert (ws.root / SHARED).read_text() == "one\n"
    assert not ws.repo.branches.delete("orch/p/t2", two)  # unmerged: kept
    kept = ws.repo.branches.park("orch/p/t2")
    assert kept == "refs/orch/abandoned/p/t2" and git(ws.root, "rev-parse", kept) == two
    assert ws.repo.branches.names("orch") == {"orch/p/t1": one}


# -- the runtime: a project's tasks through review, with events -----------------------------


def _task(ws: Workspace, branches: TaskBranches, task: str, content: bytes) -> None:
    """A Dev's attempt at task (new or rework), through QA's pass: its file on its branch."""
    state = ws.reader.states(["p"])["p"]
    if task not in state.tasks:
        ws.log.append("p", [ev.NewEvent(payload=ev.TaskAssigned(task_id=task, module="api"),
                                        actor="pm.api")])
        state = ws.reader.states(["p"])["p"]
    t = state.tasks[task]
    branches.cut("p", t)
    started = ws.log.append("p", [ev.NewEvent(payload=ev.TaskStarted(task_id=task, worker="w"),
                                              actor="dev.api", causation_id=t.assigned_event)])
    done = ev.NewEvent(payload=ev.TaskCompleted(task_id=task, artifacts=[SHARED]),
                       actor="dev.api", causation_id=started[0].id)
    events, files = branches.commit_work("p", t, [done], {SHARED: content})
    assert files == {}
    completed = ws.log.append("p", events)[0]
    assert isinstance(completed.payload, ev.TaskCompleted) and completed.payload.branch
    requested = ws.log.append("p", [ev.NewEvent(payload=ev.QaRequested(task_id=task),
                                                actor="monitor.api",
                                                causation_id=completed.id)])
    ws.log.append("p", [ev.NewEvent(payload=ev.QaPassed(task_id=task), actor="qa.api",
                                    causation_id=requested[0].id)])


def _rework(ws: Workspace, task: str) -> None:
    t = ws.reader.states(["p"])["p"].tasks[task]
    assert t.status == TaskStatus.QA_FAILED
    ws.log.append("p", [ev.NewEvent(payload=ev.TaskAssigned(task_id=task, reason="rework",
                                                            findings=t.findings),
                                    actor="monitor.api", causation_id=t.last_event)])


def test_two_tasks_on_one_file_conflict_and_the_rework_keeps_both(ws: Workspace) -> None:
    ws.log.append("p", [ev.NewEvent(payload=ev.ProjectCreated(), actor="system")])
    branches = TaskBranches(ws, lambda path: (ws.root / path).read_text()
                            if (ws.root / path).is_file() else None)
    _task(ws, branches, "t1", b"# Notes\n\nfrom t1\n")
    _task(ws, branches, "t2", b"# Notes\n\nfrom t2\n")
    assert [i.task for i in review.waiting(ws, "p")] == ["t1", "t2"]

    first = review.approve(ws, "p", "t1", by="Pat", note="fine")
    assert first.merged and first.branch_deleted
    second = review.approve(ws, "p", "t2", by="Pat")
    assert not second.merged and second.conflicts == (SHARED,)
    t2 = ws.reader.states(["p"])["p"].tasks["t2"]
    assert t2.status == TaskStatus.QA_FAILED and t2.conflicts == [SHARED]
    assert SHARED in t2.findings[0]
    assert (ws.root / SHARED).read_text() == "# Notes\n\nfrom t1\n"  # nothing was dropped

    _rework(ws, "t2")
    on_main = (ws.root / SHARED).read_bytes()
    _task(ws, branches, "t2", on_main + b"\nfrom t2\n")  # the Dev keeps both sides
    third = review.approve(ws, "p", "t2", by="Pat")
    assert third.merged and third.branch_deleted
    assert (ws.root / SHARED).read_text() == "# Notes\n\nfrom t1\n\nfrom t2\n"
    state = ws.reader.states(["p"])["p"]
    assert {t.status for t in state.tasks.values()} == {TaskStatus.PASSED}
    assert state.tasks["t2"].attempt == 2
    assert ws.repo.branches.names("orch") == {}
    # first parents: orch's event commits and the merges only, never a Dev's commit
    for line in git(ws.root, "log", "--first-parent", "--format=%P|%s", "main").splitlines():
        parents, subject = line.split("|", 1)
        assert subject.startswith(("[p]", "orch init")), subject
        if len(parents.split()) == 2:
            assert "task.merged" in subject
    # the first attempt's conflicting content is still in the history
    assert "from t2" in git(ws.root, "log", "-p", "--all", "--", SHARED)


def test_reject_and_abandon_through_the_runtime(ws: Workspace) -> None:
    ws.log.append("p", [ev.NewEvent(payload=ev.ProjectCreated(), actor="system")])
    branches = TaskBranches(ws, lambda path: None)
    _task(ws, branches, "t1", b"one\n")
    with pytest.raises(UsageError, match="needs a message"):
        review.reject(ws, "p", "t1", ["  "])
    decision = review.reject(ws, "p", "t1", ["Say hello first"], by="Pat")
    payload = decision.events[0].payload
    assert payload.type_name == "review.rejected"
    with pytest.raises(UsageError, match="qa_failed, not in review"):
        review.approve(ws, "p", "t1")
    _rework(ws, "t1")
    _task(ws, branches, "t1", b"hello\none\n")
    head = ws.repo.branches.head("orch/p/t1")
    review.abandon(ws, "p", "t1", by="Pat", reason="not needed", source="github",
                   ref="https://example.invalid/pull/1")
    state = ws.reader.states(["p"])["p"]
    assert state.tasks["t1"].status == TaskStatus.ABANDONED
    assert ws.repo.branches.names("orch") == {}
    assert git(ws.root, "rev-parse", "refs/orch/abandoned/p/t1") == head
    with pytest.raises(UsageError, match="no task"):
        review.approve(ws, "p", "nope")


def test_branches_of_ended_tasks_are_deleted_or_kept_never_lost(ws: Workspace) -> None:
    ws.log.append("p", [ev.NewEvent(payload=ev.ProjectCreated(), actor="system")])
    branches = TaskBranches(ws, lambda path: None)
    ws.log.append("p", [ev.NewEvent(payload=ev.TaskAssigned(task_id=t, module="api"),
                                    actor="pm.api") for t in ("big", "t2")])
    state = ws.reader.states(["p"])["p"]
    branches.cut("p", state.tasks["big"])  # claimed, then split: no commit of its own
    ws.log.append("p", [ev.NewEvent(payload=ev.TaskDecomposed(task_id="big", subtasks=[]),
                                    actor="pm.api", causation_id=state.tasks["big"].last_event)])
    _task(ws, branches, "t2", b"two\n")
    review.reject(ws, "p", "t2", ["no"])
    t2 = ws.reader.states(["p"])["p"].tasks["t2"]
    ws.log.append("p", [ev.NewEvent(payload=ev.MonitorAlert(kind="rework_exhausted",
                                                            task_id="t2", module="api"),
                                    actor="monitor.api", causation_id=t2.last_event)])
    head = ws.repo.branches.head("orch/p/t2")
    branches.retire("p", ws.reader.states(["p"])["p"])
    assert ws.repo.branches.names("orch") == {}
    assert git(ws.root, "rev-parse", "refs/orch/abandoned/p/t2") == head
    assert "refs/orch/abandoned/p/big" not in git(ws.root, "for-each-ref")


def test_a_refusing_hook_fails_the_merge_closed(ws: Workspace) -> None:
    main = ws.repo.head()
    assert main is not None
    head = ws.repo.branches.commit("orch/p/t1", {"project/p/api/a.py": b"A = 1\n"}, "t1\n",
                                   start=main)
    hook = ws.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'merges need a ticket' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(HookRefusedError, match="merges need a ticket"):
        ws.repo.branches.merge_into_current(head, {}, "merge t1\n")
    assert ws.repo.head() == main and not (ws.root / "project/p/api").exists()
    assert ws.repo.branches.head("orch/p/t1") == head
    assert git(ws.root, "status", "--porcelain") == ""
