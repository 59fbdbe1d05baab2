"""The engine's side of a branch per task: the branch is cut when a Dev claims the task, the
Dev's files are committed there (never on the checked-out branch), QA reads that branch's
files, and merges and review requests are done here, in order."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.state import TASK_DONE, TASK_FAILED, ProjectState, Task, TaskStatus
from orchestrator.errors import UsageError
from orchestrator.runtime import review
from orchestrator.runtime.workspace import Workspace

ReadText = Callable[[str], "str | None"]


class TaskBranches:
    def __init__(self, ws: Workspace, read_main: ReadText) -> None:
        self.ws = ws
        self.read_main = read_main
        self._ended: dict[str, int] = {}
        self.base: Callable[[], str | None] = ws.repo.head
        """Where branches are cut from: the main branch here; with many workers, the main
        branch as the remote has it (`orch dispatch`). A branch must never hold a commit
        that is not published yet: its events are renumbered when a push loses a race,
        and a merge of the branch would bring their old files back beside the new ones."""

    def cut(self, project: str, task: Task) -> None:
        """Cut the task's branch from the main branch as it is now; a rework adds commits to
        the same branch, from where the log says the last attempt left it (that attempt may
        have been another clone's)."""
        main = self.base()
        if main is None:
            return
        name = review.task_branch(project, task.id)
        if task.head and self.ws.repo.has_commit(task.head):
            self.ws.repo.branches.follow(name, task.head)
        else:
            self.ws.repo.branches.cut(name, main)

    def retire(self, project: str, state: ProjectState) -> None:
        """Branches of tasks that are done and not waiting to be merged stop being branches:
        deleted when the main branch holds all of them (a task that was decomposed, or whose
        claim never led to a commit), else (rework exhausted, abandoned) kept with their
        commits under refs/orch/abandoned/. Looked at only when a task newly ended."""
        ended = {t.id: t for t in state.tasks.values()
                 if t.status in (*TASK_DONE, TaskStatus.DECOMPOSED)}
        if len(ended) == self._ended.get(project, -1):
            return
        self._ended[project] = len(ended)
        main = self.ws.repo.head()
        prefix = review.task_branch(project, "")
        for name, head in self.ws.repo.branches.names(prefix).items():
            task = ended.get(name.removeprefix(prefix))
            if task is None or main is None:
                continue
            if self.ws.repo.is_ancestor(head, main):
                self.ws.repo.branches.delete(name, head)
            elif task.status in TASK_FAILED:
                self.ws.repo.branches.park(name)

    def commit_work(self, project: str, task: Task, events: list[ev.NewEvent],
                    files: Mapping[str, bytes]) -> tuple[list[ev.NewEvent], dict[str, bytes]]:
        """Put a Dev's artifacts on the task's branch: the task.completed then names the
        branch and its new commit, and only the rest (transcripts) goes with the events."""
        done = next((i for i, e in enumerate(events)
                     if isinstance(e.payload, ev.TaskCompleted)), None)
        main = self.base()
        if done is None or main is None:
            return events, dict(files)
        completed = events[done].payload
        assert isinstance(completed, ev.TaskCompleted)
        artifacts = {p: files[p] for p in completed.artifacts if p in files}
        if not artifacts:
            return events, dict(files)
        branch, head = self.commit_attempt(project, task, artifacts)
        payload = completed.model_copy(update={"branch": branch, "head": head})
        links = (ev.Link(kind="branch", ref=branch), ev.Link(kind="commit", ref=head))
        events = list(events)
        events[done] = events[done].model_copy(
            update={"payload": payload, "links": events[done].links + links})
        return events, {p: d for p, d in files.items() if p not in artifacts}

    def commit_attempt(self, project: str, task: Task, artifacts: Mapping[str, bytes]
                       ) -> tuple[str, str]:
        """Commit an attempt's artifacts on the task's branch (cut or followed first, as at
        the claim); return the branch and its new commit."""
        main = self.base()
        if main is None:
            raise UsageError("the branch has no commit to cut a task's branch from")
        self.cut(project, task)
        branch = review.task_branch(project, task.id)
        message = (f"[{project}] {task.id} attempt {task.attempt}: {len(artifacts)} file(s) "
                   f"of dev.{task.module}\n")
        # After a conflict the rework is the resolution: its files may merge the main
        # branch into the task's branch (only for the paths the Dev was told of).
        head = self.ws.repo.branches.commit(
            branch, artifacts, message, start=main,
            reconcile_with=main if task.conflicts else None, resolves=task.conflicts)
        return branch, head

    def reader(self, state: ProjectState, r: Reaction) -> ReadText:
        """What an agent reads: for QA of a task on a branch, that branch's files over the
        main branch's (the tree as it would be once merged); else the main branch's."""
        task = state.tasks.get(r.subject) if r.kind == "qa" else None
        if task is None or not task.branch or not task.head:
            return self.read_main
        main = self.ws.repo.head()
        base = self.ws.repo.merge_base(main, task.head) if main else None
        changed = {p: d for p, d in self.ws.repo.changed_files(base, task.head).items()
                   if base is not None or p.startswith("project/")}

        def read(path: str) -> str | None:
            if path in changed:
                data = changed[path]
                return data.decode("utf-8", "replace") if data is not None else None
            return self.read_main(path)

        return read

    def perform(self, project: str, r: Reaction) -> list[ev.Event]:
        """A merge (`task.merged` or `merge.conflicted`) or a review request, written."""
        state = self.ws.reader.states([project])[project]
        task = state.tasks[r.subject]
        if r.kind == "merge":
            return review.merge_task(self.ws, state, task, r.actor, r.causation_id).events
        return self.ws.log.append(
            project, review.request_review(self.ws, state, task, r.actor, r.causation_id))
