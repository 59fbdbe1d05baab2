"""`orch status`: the views of the log, now or at any commit (light: a warm status imports
neither pydantic nor the YAML parser)."""

from __future__ import annotations

from typing import Any

from orchestrator.adapters.clock import utcnow
from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.core.views import finding_view, project_view, stale_claims
from orchestrator.errors import ProjectNotFoundError
from orchestrator.runtime.workspace import Workspace


def status_views(
    ws: Workspace, project: str | None, rev: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Project views (all, or one) of the working tree's log or of the log at `rev`."""
    if rev is not None:
        from orchestrator.adapters.event_refresh import fold_blobs

        sha = ws.repo.resolve(rev)
        # The log folder's own markers (the .gitkeep of `orch init`) are not stray files.
        markers = {f"{EVENTS_DIR}/{name}" for name in (".gitkeep", ".gitattributes")}
        states, findings = fold_blobs((path, data) for path, data in
                                      ws.repo.read_tree_files(sha, EVENTS_DIR)
                                      if path not in markers)
        views = {p: project_view(s) for p, s in states.items()}
        stray = [finding_view(f) for f in findings]
    else:
        if project is not None and project not in ws.reader.projects():
            raise ProjectNotFoundError(f"no project '{project}' in the log; 'orch status' lists them")
        views = ws.reader.views([project] if project else None)
        stray = [finding_view(f) for f in ws.reader.stray_findings()]
    now = utcnow()
    for view in views.values():  # the time-dependent part of a view is never cached
        view["stale_claims"] = stale_claims(view, now)
    if project is not None:
        if project not in views:
            raise ProjectNotFoundError(f"no project '{project}' in the log; 'orch status' lists them")
        return [views[project]], stray
    return [views[p] for p in sorted(views)], stray


def report_markdown(ws: Workspace, project: str | None) -> str:
    """`orch report`: the Markdown report of every project (or one), as the job summary
    shows it."""
    from orchestrator.core.report import report

    views, _ = status_views(ws, project, None)
    return report(views, {view["id"]: ws.reader.events(view["id"]) for view in views})
