"""QA: reviews a completed task's artifacts against its requirements and its brief."""

from __future__ import annotations

from orchestrator.agents import reports
from orchestrator.agents.base import (
    AgentContext,
    AgentOutput,
    answered,
    ask,
    facts,
    requirements_block,
)
from orchestrator.agents.dev import squad_relative
from orchestrator.agents.outputs import QaOutput
from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief
from orchestrator.core.paths import project_dir

MAX_SHOWN_BYTES = 20_000


def review(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    task = s.tasks[r.subject]
    shown = []
    missing = []
    for path in sorted(set(task.artifacts) | set(task.expected_files)):
        text = ctx.read_text(path)
        if text is None:
            missing.append(path)
            continue
        shown.append(f"### {squad_relative(s, task, path)}\n{text[:MAX_SHOWN_BYTES]}")
    brief = Brief(
        task=f"Review task {task.id} ({task.title}) against its requirements.",
        context="\n\n".join([
            facts(project=s.id, squad=task.module, task=task.id, attempt=task.attempt),
            requirements_block(s, task.requirements),
            "## Artifacts\n" + "\n\n".join(shown),
        ]),
        expected_return="passed or failed, with concrete findings per requirement.",
    )
    out = AgentOutput()
    verdict = ask(ctx, r, "qa", brief, QaOutput, out)
    findings = [f[:1000] for f in verdict.findings][:20]
    findings += [f"expected file missing: {p}" for p in missing]
    passed = verdict.passed and not missing
    report_path = (f"{project_dir(s.id)}/{task.module}/qa/{task.id}-attempt{task.attempt}.md")
    answered(brief, verdict.result, out.files)  # the answer is held against its brief first
    link = out.write(report_path, reports.qa_report(s, task, passed, findings, verdict.result))
    if passed:
        out.emit(r, ev.QaPassed(task_id=task.id, report=link.ref), links=[link])
    else:
        out.emit(r, ev.QaFailed(task_id=task.id, findings=findings or ["QA did not pass"],
                                report=link.ref), links=[link])
    return out
