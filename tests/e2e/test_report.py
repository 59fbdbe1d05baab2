"""`orch report`: the Markdown people read, its Mermaid drawn by mermaid itself in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_orch
from tests.support.mermaid_check import blocks, draw, tools


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    where = tmp_path_factory.mktemp("demo") / "repo"
    run_orch(where.parent, "demo", str(where), timeout=300)
    return run_orch(where, "report").stdout


def test_the_report_carries_status_squads_graph_and_gantt(demo_report: str) -> None:
    assert demo_report.startswith("# orch report")
    assert "| squad | status | depends on | tasks passed | reworks |" in demo_report
    diagrams = blocks(demo_report)
    assert [d.split("\n", 1)[0] for d in diagrams] == ["flowchart LR", "gantt"]
    gantt = diagrams[1]
    assert ":crit," in gantt  # the demo's QA failures show as failed attempts
    assert "attempt 2" in gantt and "blocked" in gantt  # rework and a block


def test_every_mermaid_block_draws(demo_report: str, tmp_path: Path) -> None:
    found = tools()
    if isinstance(found, str):
        pytest.skip(found)
    shot = tmp_path / "report.png"
    results = draw(blocks(demo_report), tmp_path, screenshot=shot)
    assert results == ["ok", "ok"], results
    assert shot.stat().st_size > 10_000  # docs/images/report-demo.png is one of these


def test_hostile_text_stays_text_and_still_draws(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from orchestrator.core import events as ev
    from orchestrator.core.report import project_report

    hostile = 'x"]; click s0 call alert(1) %% $(id) `rm -rf` ${{ secrets.X }} @octocat\u200b'
    view = {"id": "p", "title": hostile, "status": "in_progress", "spec_ref": "specs/p.md@abc",
            "modules": [{"name": "api", "status": "in_progress", "depends_on": []}],
            "tasks": [{"id": "api-1", "module": "api", "status": "in_qa", "attempt": 1,
                       "requirements": [], "title": hostile}],
            "alerts": [{"kind": "x", "message": hostile}], "usage": {}, "events": 1}
    event = ev.Event(id="01J00000000000000000000000", seq=1, type="task.assigned",
                     project="p", request_id="r", causation_id="", actor="pm.api",
                     at=datetime(2026, 1, 1, tzinfo=UTC),
                     payload=ev.TaskAssigned(task_id="api-1", module="api", title=hostile))
    text = project_report(view, [event])
    assert "\u200b" not in text and "`@octocat`" in text
    found = tools()
    if isinstance(found, str):
        pytest.skip(found)
    assert draw(blocks(text), tmp_path) == ["ok", "ok"]
