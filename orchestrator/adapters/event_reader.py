"""Reading the log: event files folded into project states, through a cache that notices change.

Event files are immutable, so a parsed file never needs parsing twice. A project's cached
state is reused while its folders' stat signatures are unchanged and git reports none of
its tracked files modified; otherwise every file is stat'ed, only changed files are parsed
again, and the fold is incremental when the new events all sort after the folded ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.adapters.cache import Cache
from orchestrator.adapters.eventfiles import EVENTS_DIR, list_projects, stray_files
from orchestrator.core.ids import PROJECT_ID_RE
from orchestrator.core.state import Finding, ProjectState

if TYPE_CHECKING:
    from orchestrator.adapters.git import GitRepo
    from orchestrator.core.events import Event

INDEX = "index.json"
PARALLEL_MIN_PROJECTS = 4
"""Cold reads of this many changed projects or more are spread over the machine's cores."""


def _project_cache_name(project: str) -> str:
    return f"projects/{project}.json"


def _dir_signature(root: Path, project: str) -> dict[str, list[int]]:
    pdir = os.path.join(root, EVENTS_DIR, project)
    sig: dict[str, list[int]] = {}
    try:
        st = os.stat(pdir)
        sig[""] = [st.st_mtime_ns, st.st_ino]
        for entry in os.scandir(pdir):
            est = entry.stat(follow_symlinks=False)
            sig[entry.name] = [est.st_mtime_ns, est.st_ino, est.st_mode]
    except OSError:
        return {}
    return sig


class LogReader:
    """Folds the working tree's event log; `views()` for status, `states()` for the runtime."""

    def __init__(self, root: Path, repo: GitRepo | None = None, use_cache: bool = True) -> None:
        self.root = root
        self.repo = repo
        self.cache = Cache(root)
        self.use_cache = use_cache
        self._states: dict[str, ProjectState] = {}
        self._events: dict[str, list[Event]] = {}

    # -- public ------------------------------------------------------------------------------

    def projects(self) -> list[str]:
        return [p for p in list_projects(self.root) if PROJECT_ID_RE.match(p)]

    def views(self, projects: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The status view of each project, from the cache where nothing changed."""
        collect_dirty = self._start_dirty_check()
        wanted = list(projects) if projects is not None else self.projects()
        index = (self.cache.read(INDEX) if self.use_cache else None) or {"projects": {}}
        cached: dict[str, Any] = index.get("projects", {})
        signatures = {p: _dir_signature(self.root, p) for p in wanted}
        dirty = collect_dirty()
        out: dict[str, dict[str, Any]] = {}
        stale = []
        for project in wanted:
            entry = cached.get(project)
            if entry is not None and entry.get("dirs") == signatures[project] and (
                project not in dirty
            ):
                out[project] = entry["view"]
            else:
                stale.append(project)
        for project, view in self._refresh_views(stale):
            out[project] = view
            cached[project] = {"dirs": signatures[project], "view": view}
        if stale and self.use_cache:
            self.cache.write(INDEX, {"projects": cached})
        return {p: out[p] for p in wanted}

    def _refresh_views(self, projects: list[str]) -> Iterable[tuple[str, dict[str, Any]]]:
        """Fold changed projects: here, or in worker processes when many are cold."""
        workers = min(os.cpu_count() or 1, len(projects))
        if len(projects) < PARALLEL_MIN_PROJECTS or workers < 2:
            for project in projects:
                state, view = self._refresh(project)
                self._states[project] = state
                yield project, view
            return
        from orchestrator.adapters.event_refresh import refresh_view

        # spawn, not fork: this process may hold threads (the git index queue).
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            root = str(self.root)
            yield from zip(projects, pool.map(refresh_view, [root] * len(projects), projects,
                                              [self.use_cache] * len(projects), chunksize=4),
                           strict=True)

    def states(self, projects: Iterable[str] | None = None) -> dict[str, ProjectState]:
        """Project states for the deciders: read once, then kept up to date by this process's
        own appends (`remember`); call `invalidate()` after anything else changed the log."""
        wanted = list(projects) if projects is not None else self.projects()
        missing = [p for p in wanted if p not in self._states]
        if missing:
            self.views(missing)
        result: dict[str, ProjectState] = {}
        for project in wanted:
            if project not in self._states:
                data = self.cache.read(_project_cache_name(project)) if self.use_cache else None
                if data is not None:
                    self._states[project] = ProjectState.from_cache(data["state"])
                else:
                    self._states[project] = self._refresh(project)[0]
            result[project] = self._states[project]
        return result

    def events(self, project: str) -> list[Event]:
        """The project's valid events in fold order (files read now, parsed via the cache)."""
        if project not in self._events:
            self._states[project] = self._refresh(project, want_events=True)[0]
        return self._events[project]

    def audit(self, project: str) -> tuple[dict[str, Any], list[Event]]:
        """One full read of a project: its view and its valid events, in fold order."""
        state, view = self._refresh(project, want_events=True)
        self._states[project] = state
        return view, self._events[project]

    def stray_findings(self) -> list[Finding]:
        return stray_files(self.root)

    def known(self) -> set[str]:
        """Projects whose state this process holds (some may be staged, not yet on disk)."""
        return set(self._states)

    def invalidate(self) -> None:
        self._states.clear()
        self._events.clear()

    def forget(self, project: str) -> None:
        """Drop the in-memory state of a project: the next read folds it from disk."""
        self._states.pop(project, None)
        self._events.pop(project, None)

    def remember(self, project: str, state: ProjectState) -> None:
        """Keep the state this process folded its own appends into (saves a re-read)."""
        self._states[project] = state
        self._events.pop(project, None)  # the list read before the append lacks it

    # -- internals ---------------------------------------------------------------------------

    def _start_dirty_check(self) -> Any:
        """Projects with tracked event files that git sees modified or deleted in the tree;
        git sweeps the index while this process does its own work."""
        if self.repo is None:
            return set
        collect = self.repo.start_modified_files(EVENTS_DIR)

        def dirty() -> set[str]:
            return {parts[2] for parts in (p.split("/") for p in collect()) if len(parts) > 2}

        return dirty

    def _refresh(self, project: str, want_events: bool = False
                 ) -> tuple[ProjectState, dict[str, Any]]:
        from orchestrator.adapters.event_refresh import refresh_project

        state, view, events = refresh_project(self.root, project, self.cache, self.use_cache,
                                              want_events)
        if events is not None:
            self._events[project] = events
        return state, view


