"""The log writer: a failed commit stops everything queued behind it; the branch moving
under it is retried."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters.event_reader import LogReader
from orchestrator.adapters.git import GitRepo
from orchestrator.core import events as ev
from orchestrator.errors import GitError
from orchestrator.runtime.log import EventLog
from orchestrator.runtime.workspace import Workspace


class FailingRepo(GitRepo):
    """A real repository whose n-th commit fails, as a full disk or a lost lock would."""

    fail_at = 2
    calls = 0

    def commit_files(self, files: Mapping[str, bytes | None], message: str,
                     **kwargs: Any) -> str:
        type(self).calls += 1
        if type(self).calls == self.fail_at:
            raise GitError("disk full")
        return super().commit_files(files, message, **kwargs)


def _task(i: int) -> list[ev.NewEvent]:
    return [ev.NewEvent(payload=ev.TaskAssigned(task_id=f"T{i}", module="m"), actor="pm")]


def test_nothing_queued_behind_a_failed_commit_is_written(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    repo = FailingRepo.open(tmp_path)
    log = EventLog(repo, LogReader(tmp_path, repo))
    log.append("p", [ev.NewEvent(payload=ev.ProjectCreated(), actor="system")])  # call 1
    with pytest.raises(GitError, match="disk full"):  # raised by the next commit or the drain
        for i in range(3):  # call 2 fails; what was queued behind it is refused
            log.stage("p", _task(i))
            log.commit(wait=False)
        log.drain()
    with contextlib.suppress(GitError):
        log.drain()
    view = LogReader(tmp_path, repo, use_cache=False).views()["p"]
    assert view["tasks"] == [] and view["findings"] == []  # no hole, no half
    log.append("p", _task(9))  # the writer works again, from what is on disk
    tasks = LogReader(tmp_path, repo, use_cache=False).views()["p"]["tasks"]
    assert [t["id"] for t in tasks] == ["T9"]


def test_a_commit_made_meanwhile_by_a_person_is_kept(tmp_path: Path) -> None:
    ws, _ = Workspace.init(tmp_path)
    ws.log.append("p", [ev.NewEvent(payload=ev.ProjectCreated(), actor="system")])
    (tmp_path / "notes.md").write_text("mine\n")
    subprocess.run(["git", "add", "notes.md"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "a person's commit"], cwd=tmp_path, check=True)
    ws.log.append("p", _task(1))
    files = subprocess.run(["git", "ls-tree", "-r", "--name-only", "HEAD"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout
    assert "notes.md" in files
    assert subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout == ""
