"""Terminal output: rich tables for people, compact JSON for scripts."""

from __future__ import annotations

import sys
from typing import Any

import orjson


def print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


_STATUS_STYLE = {
    "passed": "green", "completed": "green", "accepted": "bold green", "deployed": "green",
    "delivered": "green", "resolved": "green", "fulfilled": "green",
    "qa_failed": "yellow", "blocked": "red", "rework_exhausted": "bold red", "failed": "bold red",
    "open": "red", "invalid": "bold red", "changes_requested": "yellow",
}


def _styled(value: str) -> str:
    style = _STATUS_STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


def print_status(views: list[dict[str, Any]], stray: list[dict[str, Any]]) -> None:
    """One panel per project: squads, tasks, blocks, alerts, what the author was told."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not views:
        console.print("No projects yet. Commit a spec under specs/ and run 'orch run'.")
    for view in views:
        usage = view["usage"]
        console.print(
            f"[bold]{view['id']}[/]  {_styled(view['status'])}  round {view['round']}  "
            f"spec {view['spec_ref'] or '-'}  events {view['events']}  "
            f"tokens {usage['prompt_tokens'] + usage['completion_tokens']}  "
            f"cost ${usage['cost_usd']:.4f}"
        )
        if view["modules"]:
            table = Table("squad", "status", "depends on", "tasks passed", title=None)
            for m in view["modules"]:
                tasks = [t for t in view["tasks"] if t["module"] == m["name"]]
                passed = sum(1 for t in tasks if t["status"] == "passed")
                table.add_row(m["name"], _styled(m["status"]), ", ".join(m["depends_on"]) or "-",
                              f"{passed}/{len(tasks)}")
            console.print(table)
        if view["tasks"]:
            table = Table("task", "squad", "status", "attempt", "requirements", "title")
            for t in view["tasks"]:
                table.add_row(_text(t["id"]), _text(t["module"]), _styled(t["status"]),
                              str(t["attempt"]), ", ".join(t["requirements"]) or "-",
                              _text(t.get("title", ""), 60))
            console.print(table)
        _rows(console, "blocks", view["blocks"], ["id", "status", "reported_by",
                                                    "responsible_squad", "description"])
        _rows(console, "dependency requests", view.get("dependencies", []),
              ["id", "status", "from_squad", "to_squad", "need"])
        _rows(console, "failed reactions (latest reason)", [
            {**f, "next": "waits for 'orch retry'" if f["waiting"] else "tried again next run"}
            for f in view.get("failed_reactions", [])],
            ["reaction", "attempts", "next", "reason"])
        _rows(console, "alerts", view["alerts"], ["kind", "state", "attempt", "task_id",
                                                  "message"])
        _rows(console, "told to the spec's author", view.get("notices", []), ["kind", "message"])
        _rows(console, "findings", view["findings"], ["message"])
        console.print()
    _rows(console, "findings outside projects", stray, ["message"])


def _rows(console: Any, title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    from rich.table import Table

    if not rows:
        return
    table = Table(*cols, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(_styled(str(row.get(c, ""))) if c == "status" else _text(row.get(c, ""))
                        for c in cols))
    console.print(table)


def _text(value: object, limit: int = 160) -> str:
    """User and model text in a cell: rich markup escaped, long text cut."""
    from rich.markup import escape

    text = " ".join(str(value).split())
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


class LiveProgress:
    """`orch run` on a terminal: a live table of squads and tasks above the event lines."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console()
        self.live = Live(console=self.console, refresh_per_second=8, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def log(self, line: str) -> None:
        self.live.console.print(line, markup=False, highlight=False)

    def update(self, states: dict[str, Any], in_flight: int) -> None:
        from rich.table import Table

        table = Table("project", "squad", "status", "tasks", "ok", "QA", "rework", "blocked",
                      "failed", title=f"agents at work: {in_flight}", title_justify="left")
        for project, state in sorted(states.items()):
            if not state.modules:
                table.add_row(project, "-", state.status.value, "", "", "", "", "", "")
            for name, module in state.modules.items():
                tasks = [t for t in state.tasks.values() if t.module == name]

                def count(*statuses: str, tasks: list[Any] = tasks) -> str:
                    return str(sum(1 for t in tasks if t.status.value in statuses))

                table.add_row(project, name, module.status.value, str(len(tasks)),
                              count("passed"), count("completed", "in_qa"), count("qa_failed"),
                              count("blocked"), count("rework_exhausted"))
        self.live.update(table)
