"""Reports as documents for people: Markdown with the facts from the log (requirements, tasks,
verdicts) and the agent's own words under plain headings. The [EXPECTED RETURN RESPONSE]
template stays in the messages between agents; it is checked there, never written here."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.agents.outputs import ResultOut
from orchestrator.core.coverage import requirement_outcomes
from orchestrator.core.state import Module, ProjectState, Task


def final_report(state: ProjectState, summary: str, result: ResultOut,
                 delivered: Sequence[str], failed: Sequence[str]) -> str:
    lines = [f"# Final report: {state.title or state.id} (round {state.round})", ""]
    if summary.strip():
        lines += [summary.strip(), ""]
    lines += ["## Outcome", "",
              f"- Squads delivered: {', '.join(delivered) or 'none'}",
              f"- Squads failed: {', '.join(failed) or 'none'}",
              f"- Spec: {state.spec_path or '-'}", ""]
    lines += _requirements_table(state, None)
    lines += _prose(result)
    return "\n".join(lines).rstrip() + "\n"


def squad_report(state: ProjectState, module: Module, outcome: str, summary: str,
                 result: ResultOut) -> str:
    lines = [f"# Squad report: {module.name} (round {state.round})", "",
             f"Outcome: **{outcome}**", ""]
    if summary.strip():
        lines += [summary.strip(), ""]
    lines += _requirements_table(state, module.name, module.requirements)
    tasks = [t for t in state.tasks.values() if t.module == module.name and t.round == state.round]
    lines += ["## Tasks", "", "| task | title | status | attempts |", "|---|---|---|---|"]
    lines += [f"| {t.id} | {_cell(t.title)} | {t.status.value} | {t.attempt} |" for t in tasks]
    lines.append("")
    if module.bundle:
        lines += [f"Release bundle: `{module.bundle}`", ""]
    if module.smoke_failed:
        lines += [f"Smoke tests failed: {', '.join(module.smoke_failed)}", ""]
    lines += _prose(result)
    return "\n".join(lines).rstrip() + "\n"


def qa_report(state: ProjectState, task: Task, passed: bool, findings: Sequence[str],
              result: ResultOut) -> str:
    lines = [f"# QA review of {task.id} (attempt {task.attempt})", "",
             f"{task.title}", "", f"Verdict: **{'passed' if passed else 'failed'}**", ""]
    if task.requirements:
        lines += ["## Requirements checked", ""]
        lines += [f"- {rid}: {state.requirement_details.get(rid, {}).get('text', '')}".rstrip()
                  for rid in task.requirements]
        lines.append("")
    if findings:
        lines += ["## Findings", ""] + [f"- {f}" for f in findings] + [""]
    lines += _prose(result, first="Review")
    return "\n".join(lines).rstrip() + "\n"


def _requirements_table(state: ProjectState, squad: str | None,
                        ids: Sequence[str] | None = None) -> list[str]:
    outcomes = requirement_outcomes(state, ids, squad)
    if not outcomes:
        return []
    lines = ["## Requirements", "", "| id | requirement | status | tasks |", "|---|---|---|---|"]
    lines += [f"| {o.id} | {_cell(o.text)} | {o.status} | {', '.join(o.tasks) or '-'} |"
              for o in outcomes]
    return lines + [""]


def _prose(result: ResultOut, first: str = "What was delivered") -> list[str]:
    lines: list[str] = []
    for heading, text in ((first, result.response), ("Notes", result.additional_info),
                          ("Suggestions", result.suggestions)):
        if text.strip():
            lines += [f"## {heading}", "", text.strip(), ""]
    return lines


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:300]
