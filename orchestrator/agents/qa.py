"""QA: runs the squad's checks on a completed task's files, then reviews them against the
requirements; a failing check fails the task whatever the review says."""

from __future__ import annotations

from orchestrator.agents.base import (
    AgentContext,
    AgentOutput,
    answered,
    ask,
    facts,
    requirement_facts,
    requirements_block,
)
from orchestrator.agents.dev import squad_relative
from orchestrator.agents.outputs import QaOutput
from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief
from orchestrator.core.paths import project_dir
from orchestrator.core.provider import Facts
from orchestrator.core.state import ProjectState, Task, TaskStatus
from orchestrator.core.verdict import judge, plan_checks, summary

MAX_SHOWN_BYTES = 20_000


def review(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    task = s.tasks[r.subject]
    mine = sorted(set(task.artifacts) | set(task.expected_files))
    texts = {path: ctx.read_text(path) for path in mine}
    missing = [path for path, text in texts.items() if text is None]
    tree = _project_tree(ctx, s, task)
    # Checks aim at this task's files (the same files, the same commands, however the other
    # tasks' timing fell); they run on the whole tree, so a clash with passed work shows.
    own = [squad_relative(s, task, p) for p, t in texts.items() if t is not None]
    checks = plan_checks(ctx.config.qa, task.module, own)
    if ctx.run_checks is not None:
        outcomes = ctx.run_checks(s.id, tree, checks)
    else:
        outcomes = [ev.CheckOutcome(name=c.name, status="not_run", command=c.command,
                                    detail="not run: nothing may run code here")
                    for c in checks]
    shown = [f"### {squad_relative(s, task, p)}\n{t[:MAX_SHOWN_BYTES]}"
             for p, t in texts.items() if t is not None]
    brief = Brief(
        task=f"Review task {task.id} ({task.title}) against its requirements.",
        context="\n\n".join([
            facts(project=s.id, squad=task.module, task=task.id, attempt=task.attempt),
            requirements_block(s, task.requirements),
            "## Checks run by QA (from the project's folder)\n" + summary(outcomes),
            "## Artifacts\n" + "\n\n".join(shown),
        ]),
        expected_return="passed or failed, with concrete findings per requirement.",
    )
    known = Facts(
        values={"project": s.id, "squad": task.module, "task": task.id,
                "attempt": task.attempt,
                **{f"checks_{state}": tuple(o.name for o in outcomes if o.status == state)
                   for state in ("passed", "failed", "not_run")}},
        requirements=requirement_facts(s, task.requirements),
        expected_files=tuple(squad_relative(s, task, p) for p in task.expected_files),
        files={squad_relative(s, task, p): t for p, t in texts.items() if t is not None})
    out = AgentOutput()
    opinion = ask(ctx, r, "qa", brief, QaOutput, out, known)
    verdict = judge(outcomes, missing, opinion.passed, opinion.findings)
    report_path = f"{project_dir(s.id)}/{task.module}/qa/{task.id}-attempt{task.attempt}.md"
    text = answered(brief, opinion.result, out.files)
    text += "\n## Checks\n" + summary(outcomes) + "\n"
    if verdict.findings:
        text += "\n## Findings\n" + "\n".join(f"- {f}" for f in verdict.findings) + "\n"
    link = out.write(report_path, text)
    if verdict.passed:
        out.emit(r, ev.QaPassed(task_id=task.id, report=link.ref, checks=outcomes),
                 links=[link])
    else:
        out.emit(r, ev.QaFailed(task_id=task.id, findings=verdict.findings, report=link.ref,
                                checks=outcomes), links=[link])
    return out


def _project_tree(ctx: AgentContext, s: ProjectState, task: Task) -> dict[str, str]:
    """The project's files as a person would have them once this task lands: every passed
    task's artifacts and this one's, relative to the project's folder."""
    base = f"{project_dir(s.id)}/"
    paths = {a for t in s.tasks.values() if t.status == TaskStatus.PASSED for a in t.artifacts}
    paths |= set(task.artifacts)
    tree: dict[str, str] = {}
    for path in sorted(paths):
        text = ctx.read_text(path)
        if text is not None and path.startswith(base):
            tree[path.removeprefix(base)] = text
    return tree
