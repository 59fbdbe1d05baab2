"""Dev: works an assigned task: writes its artifacts under the squad's folder, or reports
that another squad blocks it."""

from __future__ import annotations

from orchestrator.agents.base import (
    AgentContext,
    AgentFailure,
    AgentOutput,
    answered,
    ask,
    facts,
    requirement_facts,
    requirements_block,
    squad_path,
)
from orchestrator.agents.outputs import DevOutput
from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction, block_allowed
from orchestrator.core.messages import Brief, TemplateError
from orchestrator.core.paths import MAX_ARTIFACT_BYTES, project_dir
from orchestrator.core.provider import Facts
from orchestrator.core.state import ProjectState, Task

MAX_FILES = 40


def squad_relative(s: ProjectState, task: Task, path: str) -> str:
    return path.removeprefix(f"{project_dir(s.id)}/{task.module}/")


def work(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    task = s.tasks[r.subject]
    mod = s.modules.get(task.module)
    try:
        assigned = Brief.parse(task.brief) if task.brief else None
    except TemplateError:
        assigned = None
    sections = [
        facts(project=s.id, squad=task.module, squads=sorted(s.modules),
              depends_on=mod.depends_on if mod else [], task=task.id, attempt=task.attempt,
              reason=task.reason, round=task.round),
        requirements_block(s, task.requirements),
    ]
    if assigned is not None:
        sections.append(f"## Assignment\n{assigned.context}")
    if task.findings:
        sections.append("## QA findings\n" + "\n".join(f"- {f}" for f in task.findings))
    on_main = _conflicting_files(ctx, s, task)
    if on_main:
        sections.append(
            "## Files as they are now on the main branch\nThis task's branch conflicts with "
            "the main branch in these files: write each one again so that it keeps the main "
            "branch's content and this task's; never drop either.\n\n" + "\n\n".join(
                f"### {path}\n{text}" for path, text in on_main.items()))
    answers = [d for d in s.dependencies.values() if d.from_squad == task.module and d.answer
               and d.task_id in (task.id, "")]
    if answers:
        sections.append("## Answers from other squads\n" + "\n".join(
            f"- {d.to_squad}: {d.answer}" for d in answers))
    brief = Brief(
        task=assigned.task if assigned else task.title or task.id,
        context="\n\n".join(sections),
        expected_files=tuple(squad_relative(s, task, p) for p in task.expected_files),
        expected_return="The files written, and what each requirement got.",
    )
    known = Facts(
        values={"project": s.id, "squad": task.module, "squads": tuple(sorted(s.modules)),
                "depends_on": tuple(mod.depends_on if mod else ()), "task": task.id,
                "title": task.title, "attempt": task.attempt, "reason": task.reason,
                "round": task.round},
        requirements=requirement_facts(s, task.requirements),
        expected_files=brief.expected_files, findings=tuple(task.findings), files=on_main)
    out = AgentOutput()
    answer = ask(ctx, r, "dev", brief, DevOutput, out, known)
    blocker = answer.blocker if answer.blocked else None
    if blocker is not None and block_allowed(s, task, blocker.squad):
        out.emit(r, ev.BlockReported(
            block_id=f"block-{task.id}", task_id=task.id, reported_by=task.module,
            responsible_squad=blocker.squad, description=blocker.description[:2000]),
            actor=f"pm.{task.module}")
        return out
    if not answer.files:
        raise AgentFailure("invalid_output", f"{task.id}: the answer wrote no file")
    links = []
    for item in answer.files[:MAX_FILES]:
        path = squad_path(s.id, task.module, item.path)
        if len(item.content.encode()) > MAX_ARTIFACT_BYTES:
            raise AgentFailure("invalid_output", f"{path} is over {MAX_ARTIFACT_BYTES} bytes")
        links.append(out.write(path, item.content))
    checked = Brief(brief.task, brief.context, brief.expected_return, tuple(task.expected_files))
    result = answered(checked, answer.result, out.files)
    out.emit(r, ev.TaskCompleted(task_id=task.id, result=result[:20000],
                                 artifacts=sorted(out.files)), links=links[:50])
    return out


def _conflicting_files(ctx: AgentContext, s: ProjectState, task: Task) -> dict[str, str]:
    """The main branch's version of each path the task's branch conflicted in (squad-relative;
    a path deleted there is shown empty)."""
    return {squad_relative(s, task, path): (ctx.read_text(path) or "")[:MAX_ARTIFACT_BYTES]
            for path in task.conflicts}
