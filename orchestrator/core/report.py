"""A project's report for people, in Markdown that GitHub draws: where it stands, a Mermaid
graph of its squads and their dependencies, a Mermaid Gantt of its tasks from the events'
times (attempts, rework and blocks visible), and what it cost. Pure: a view and events in,
text out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orchestrator.core.events import Event
from orchestrator.core.text import clean, defuse_mentions

_ENDS_ATTEMPT = {"qa.passed": "done", "qa.failed": "crit"}
_TASK_TYPES = {"task.assigned", "task.started", "task.completed", "qa.requested", "qa.passed",
               "qa.failed", "task.decomposed"}


def text(value: object, limit: int = 120) -> str:
    """Text from the log made safe to show: no control or zero-width characters, `@` mentions
    defused, Markdown table and HTML characters escaped, cut to limit."""
    out = clean(value, limit).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return defuse_mentions(out)


def _label(value: object, limit: int = 60) -> str:
    """Text for inside a Mermaid label: no quotes, colons, semicolons or brackets."""
    out = re.sub(r"[\"'`:;#{}\[\]()<>|&\\@%]", " ", clean(value, 1000))
    return clean(out, limit) or "-"


def project_report(view: dict[str, Any], events: Sequence[Event]) -> str:
    """The whole Markdown report of one project."""
    usage = view.get("usage", {})
    lines = [
        f"## {text(view.get('title') or view['id'])} (`{text(view['id'], 60)}`)",
        "",
        f"Status: **{view['status']}** · round {view.get('round', 1)} · "
        f"spec `{text(view.get('spec_ref', ''), 100)}` · {view.get('events', 0)} events · "
        f"{usage.get('prompt_tokens', 0) + usage.get('completion_tokens', 0)} tokens"
        f" in {usage.get('calls', 0)} calls · ${usage.get('cost_usd', 0.0):.4f}",
        "",
        *squad_table(view),
        "",
        *squads_graph(view),
        "",
        *tasks_gantt(view, events),
    ]
    alerts = view.get("alerts", [])
    if alerts:
        lines += ["", "### Alerts", ""]
        lines += [f"- {text(a.get('kind', ''), 40)}: {text(a.get('message', ''), 200)}"
                  for a in alerts[-10:]]
    return "\n".join(lines).rstrip() + "\n"


def squad_table(view: dict[str, Any]) -> list[str]:
    tasks = view.get("tasks", [])
    rows = ["| squad | status | depends on | tasks passed | reworks |", "|---|---|---|---|---|"]
    for module in view.get("modules", []):
        mine = [t for t in tasks if t["module"] == module["name"]]
        passed = sum(t["status"] == "passed" for t in mine)
        reworks = sum(max(0, t.get("attempt", 1) - 1) for t in mine)
        rows.append(
            f"| {text(module['name'], 40)} | {module['status']} | "
            f"{text(', '.join(module.get('depends_on', [])) or '-', 80)} | "
            f"{passed}/{len(mine)} | {reworks} |"
        )
    return rows if len(rows) > 2 else ["No squads yet."]


def squads_graph(view: dict[str, Any]) -> list[str]:
    """`flowchart LR` of the squads: an arrow from a squad to each squad it depends on."""
    modules = view.get("modules", [])
    if not modules:
        return []
    ids = {m["name"]: f"s{i}" for i, m in enumerate(modules)}
    lines = ["```mermaid", "flowchart LR"]
    for module in modules:
        lines.append(f'    {ids[module["name"]]}["{_label(module["name"])} · '
                     f'{_label(module["status"])}"]')
    for module in modules:
        for dep in module.get("depends_on", []):
            if dep in ids:
                lines.append(f"    {ids[module['name']]} --> {ids[dep]}")
    lines += [
        "    classDef done fill:#d3f9d8,stroke:#2b8a3e",
        "    classDef failed fill:#ffe3e3,stroke:#c92a2a",
        "    classDef working fill:#fff3bf,stroke:#e67700",
    ]
    for module in modules:
        status = module["status"]
        kind = ("done" if status in ("completed", "deployed") else
                "failed" if status == "failed" else "working")
        lines.append(f"    class {ids[module['name']]} {kind}")
    lines.append("```")
    return lines


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def tasks_gantt(view: dict[str, Any], events: Sequence[Event]) -> list[str]:
    """`gantt` of the tasks by squad: one bar per attempt (a failed one marked critical),
    and one per block while it was open."""
    module_of = {t["id"]: t["module"] for t in view.get("tasks", [])}
    bars: dict[str, list[tuple[str, str, int, int]]] = {}
    open_attempt: dict[str, tuple[int, int]] = {}
    attempts: dict[str, int] = {}
    blocks: dict[str, tuple[str, int]] = {}
    last = 0
    for event in sorted(events, key=lambda e: (e.seq, e.id)):
        at = _ms(event.at)
        last = max(last, at)
        payload = event.payload
        task = getattr(payload, "task_id", "")
        if event.type in _TASK_TYPES and task in module_of:
            if task not in open_attempt:
                attempts[task] = attempts.get(task, 0) + 1
                open_attempt[task] = (attempts[task], at)
            if event.type in _ENDS_ATTEMPT:
                number, start = open_attempt.pop(task)
                bars.setdefault(module_of[task], []).append(
                    (f"{task} attempt {number}", _ENDS_ATTEMPT[event.type], start, at))
        elif event.type == "block.reported":
            blocks[getattr(payload, "block_id", event.id)] = (task or "block", at)
        elif event.type == "block.resolved":
            block_id = getattr(payload, "block_id", "")
            if block_id in blocks:
                what, start = blocks.pop(block_id)
                squad = module_of.get(what, "blocks")
                bars.setdefault(squad, []).append((f"{what} blocked", "active", start, at))
    for task, (number, start) in open_attempt.items():
        bars.setdefault(module_of[task], []).append((f"{task} attempt {number}", "active", start, last))
    if not bars:
        return []
    starts = [b[2] for squad_bars in bars.values() for b in squad_bars]
    ends = [b[3] for squad_bars in bars.values() for b in squad_bars]
    span = max(ends) - min(starts)
    shortest = max(1, span // 100)  # so that every bar can be seen
    axis = "%H:%M:%S" if span > 60_000 else "%M:%S.%L"
    lines = ["```mermaid", "gantt", "    title Tasks by squad", "    dateFormat x",
             f"    axisFormat {axis}"]
    n = 0
    for squad in [m["name"] for m in view.get("modules", [])] + sorted(bars):
        if squad not in bars:
            continue
        lines.append(f"    section {_label(squad, 40)}")
        for name, tag, start, end in sorted(bars.pop(squad), key=lambda b: (b[2], b[0])):
            n += 1
            end = max(end, start + shortest)
            lines.append(f"    {_label(name)} :{tag}, b{n}, {start}, {end}")
    lines.append("```")
    return lines


def report(views: Sequence[dict[str, Any]], events_of: dict[str, Sequence[Event]]) -> str:
    """The report of every project given, one after another."""
    if not views:
        return "No projects yet.\n"
    parts = ["# orch report", ""]
    for view in views:
        parts.append(project_report(view, events_of.get(view["id"], [])))
    return "\n".join(parts)
