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
    "cancelled": "dim", "current": "red",
}


def _styled(value: str) -> str:
    style = _STATUS_STYLE.get(value)
    return f"[{style}]{value}[/]" if style else value


def print_status(views: list[dict[str, Any]], stray: list[dict[str, Any]]) -> None:
    """One panel per project: squads, tasks, blocks, alerts, what the author was told."""
    from rich.console import Console

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
            rows = []
            for m in view["modules"]:
                tasks = [t for t in view["tasks"] if t["module"] == m["name"]]
                passed = sum(1 for t in tasks if t["status"] == "passed")
                rows.append([m["name"], m["status"], ", ".join(m["depends_on"]) or "-",
                             f"{passed}/{len(tasks)}"])
            _print_table(console, ["squad", "status", "depends on", "tasks passed"], rows)
        if view["tasks"]:
            _print_table(console, ["task", "squad", "status", "attempt", "requirements", "title"],
                         [[t["id"], t["module"], t["status"], str(t["attempt"]),
                           ", ".join(t["requirements"]) or "-", t.get("title", "")]
                          for t in view["tasks"]])
        _rows(console, "blocks", view["blocks"], ["id", "status", "reported_by",
                                                    "responsible_squad", "description"])
        _rows(console, "dependency requests", view.get("dependencies", []),
              ["id", "status", "from_squad", "to_squad", "need"])
        _rows(console, "failed reactions (latest reason)", [
            {**f, "next": "waits for 'orch retry'" if f["waiting"] else "tried again next run"}
            for f in view.get("failed_reactions", [])],
            ["reaction", "attempts", "next", "reason"])
        _rows(console, "stale claims (lease ran out, no result)", view.get("stale_claims", []),
              ["reaction", "worker", "expires_at"])

        _rows(console, "pull requests", view.get("pull_requests", []),
              ["task", "number", "task_status", "url"])
        if view.get("review_queue"):
            console.print("queued for a pull request (the project is at its cap of open pull "
                          "requests, or the next 'orch github sync' opens them): "
                          + ", ".join(view["review_queue"]))
        _rows(console, "alerts", view["alerts"], ["kind", "state", "attempt", "task_id",
                                                  "message"])
        _rows(console, "told to the spec's author", view.get("notices", []), ["kind", "message"])
        _rows(console, "findings", view["findings"], ["message"])
        console.print()
    _rows(console, "findings outside projects", stray, ["message"])


def _rows(console: Any, title: str, rows: list[dict[str, Any]], cols: list[str]) -> None:
    if rows:
        _print_table(console, cols, [[str(row.get(c, "")) for c in cols] for row in rows],
                     title=title)


_NARROW_MAX = 40
"""No column but the last is wider than this: the last one (a title, a message) is cut."""


def _print_table(console: Any, headers: list[str], rows: list[list[str]],
                 title: str | None = None) -> None:
    """One line per row whatever the width (cut with an ellipsis, never wrapped): without a
    terminal rich would wrap a long title over many lines. The last column takes the room
    the others leave."""
    from rich.markup import escape
    from rich.table import Table

    plain = [[" ".join(str(cell).split()) for cell in row] for row in rows]
    widths = [min(_NARROW_MAX, max([len(h)] + [len(r[i]) for r in plain]))
              for i, h in enumerate(headers)]
    room = max(12, console.width - sum(widths[:-1]) - 3 * len(headers) - 1)
    widths[-1] = min(room, max([len(headers[-1])] + [len(r[-1]) for r in plain]))
    table = Table(*headers, title=title, title_justify="left")
    for column, width in zip(table.columns, widths, strict=True):
        column.no_wrap, column.overflow, column.min_width = True, "ellipsis", width
    for row in plain:
        cells = [cell if len(cell) <= width else cell[: width - 1] + "…"
                 for cell, width in zip(row, widths, strict=True)]
        table.add_row(*(_styled(c) if h in ("status", "state") else escape(c)
                        for h, c in zip(headers, cells, strict=True)))
    console.print(table)


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
