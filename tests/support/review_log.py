"""A repository whose project has tasks waiting for review (review: human, host: github):
each task's files on its own branch orch/shop/<task>, QA's report on main, review.requested
in the log, and a bare remote at ../origin.git. Built through orch's own writer, so the
log is exactly what a run leaves."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from orchestrator.core import events as ev
from orchestrator.core.messages import Brief
from orchestrator.runtime import review
from orchestrator.runtime.workspace import Workspace

CONFIG = """\
review: {mode: human, host: github, max_open_prs: MAX}
llm: {provider: offline}
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def build_in_review(root: Path, tasks: list[str], cap: int = 10,
                    files: Mapping[str, Mapping[str, bytes]] | None = None) -> Workspace:
    """A project whose tasks passed QA under review: human: each one's files on its branch
    orch/shop/<task> (`files` of the task, or project/shop/backend/<task>.py), QA's report
    on main, review.requested in the log."""
    origin = root.parent / "origin.git"
    git(root.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    ws, _ = Workspace.init(root)
    (root / ".orchestrator" / "config.yaml").write_text(CONFIG.replace("MAX", str(cap)))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "config: review on GitHub")
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "-u", "origin", "main")
    ws = Workspace.open(root)
    append = ws.log.append
    created = append("shop", [ev.NewEvent(payload=ev.ProjectCreated(title="Shop"),
                                          actor="system")])[0]
    squad = ev.SquadPlan(name="backend", scope="the API")
    append("shop", [ev.NewEvent(payload=ev.CharterCreated(squads=[squad]), actor="cto",
                                causation_id=created.id)])
    planned = append("shop", [ev.NewEvent(payload=ev.ModulePlanned(module="backend"),
                                          actor="cto")])[0]
    main = ws.repo.head() or ""
    for task in tasks:
        brief = Brief(task=f"Write {task}.py", context="The shop's API.",
                      expected_return="The file.", expected_files=(f"{task}.py",)).render()
        assigned = append("shop", [ev.NewEvent(
            payload=ev.TaskAssigned(task_id=task, module="backend", title=f"Write {task}",
                                    brief=brief, requirements=["FR-1"]),
            actor="pm.backend", causation_id=planned.id)])[0]
        branch = f"orch/shop/{task}"
        work = dict((files or {}).get(task) or {f"project/shop/backend/{task}.py": b"x = 1\n"})
        head = ws.repo.branches.commit(branch, work, f"dev: {task}\n", start=main)
        done = append("shop", [ev.NewEvent(
            payload=ev.TaskCompleted(task_id=task, branch=branch, head=head,
                                     artifacts=sorted(work)),
            actor="dev.backend", causation_id=assigned.id)])[0]
        report = f"project/shop/backend/qa/{task}-attempt1.md"
        qa = append("shop", [ev.NewEvent(
            payload=ev.QaPassed(task_id=task, report=report, checks=[ev.CheckOutcome(
                name="pytest", status="passed", command="pytest -q")]),
            actor="qa.backend", causation_id=done.id)],
            files={report: f"# QA of {task}\n\nEvery requirement is met.\n".encode()})[0]
        state = ws.reader.states(["shop"])["shop"]
        append("shop", review.request_review(ws, state, state.tasks[task], "monitor.backend",
                                             qa.id))
    return ws
