"""Reading the log: event files folded into project states, through a cache that notices change.

Event files are immutable, so a parsed file never needs parsing twice. A project's cached
state is reused while its folders' stat signatures are unchanged and git reports none of
its tracked files modified; otherwise every file is stat'ed, only changed files are parsed
again, and the fold is incremental when the new events all sort after the folded ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator.adapters.cache import Cache
from orchestrator.adapters.eventfiles import (
    EVENTS_DIR,
    FileRef,
    iter_project_files,
    list_projects,
    parse_event,
    read_file_bytes,
    ref_from_path,
    stray_files,
)
from orchestrator.adapters.git import GitRepo
from orchestrator.core.events import PROJECT_ID_RE, Event
from orchestrator.core.fold import apply_event, fold_project
from orchestrator.core.state import Finding, ProjectState
from orchestrator.core.views import finding_view, project_view

INDEX = "index.json"


def _project_cache_name(project: str) -> str:
    return f"projects/{project}.json"


def _dir_signature(root: Path, project: str) -> dict[str, list[int]]:
    pdir = root / EVENTS_DIR / project
    sig: dict[str, list[int]] = {}
    try:
        st = pdir.stat()
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
        wanted = list(projects) if projects is not None else self.projects()
        index = (self.cache.read(INDEX) if self.use_cache else None) or {"projects": {}}
        cached: dict[str, Any] = index.get("projects", {})
        dirty = self._dirty_projects()
        out: dict[str, dict[str, Any]] = {}
        changed = False
        for project in wanted:
            sig = _dir_signature(self.root, project)
            entry = cached.get(project)
            if entry is not None and entry.get("dirs") == sig and project not in dirty:
                out[project] = entry["view"]
                continue
            state, view = self._refresh(project, sig)
            self._states[project] = state
            out[project] = view
            cached[project] = {"dirs": sig, "view": view}
            changed = True
        if changed and self.use_cache:
            self.cache.write(INDEX, {"projects": cached})
        return out

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
                    self._states[project] = self._refresh(project, {})[0]
            result[project] = self._states[project]
        return result

    def events(self, project: str) -> list[Event]:
        """The project's valid events in fold order (files read now, parsed via the cache)."""
        if project not in self._events:
            self._states[project] = self._refresh(project, {})[0]
        return self._events[project]

    def stray_findings(self) -> list[Finding]:
        return stray_files(self.root)

    def known(self) -> set[str]:
        """Projects whose state this process holds (some may be staged, not yet on disk)."""
        return set(self._states)

    def invalidate(self) -> None:
        self._states.clear()

    def forget(self, project: str) -> None:
        """Drop the in-memory state of a project: the next read folds it from disk."""
        self._states.pop(project, None)

    def remember(self, project: str, state: ProjectState) -> None:
        """Keep the state this process folded its own appends into (saves a re-read)."""
        self._states[project] = state

    # -- internals ---------------------------------------------------------------------------

    def _dirty_projects(self) -> set[str]:
        """Projects with tracked event files that git sees modified or deleted in the tree."""
        if self.repo is None:
            return set()
        dirty: set[str] = set()
        for path in self.repo.modified_files(EVENTS_DIR):
            parts = path.split("/")
            if len(parts) > 2:
                dirty.add(parts[2])
        return dirty

    def _refresh(self, project: str, sig: dict[str, list[int]]) -> tuple[ProjectState, dict]:
        cache_name = _project_cache_name(project)
        old = (self.cache.read(cache_name) if self.use_cache else None) or {}
        old_files: dict[str, list[int]] = old.get("files", {})
        old_docs: dict[str, Any] = old.get("docs", {})
        old_findings: dict[str, Any] = old.get("file_findings_by_name", {})

        files: dict[str, list[int]] = {}
        docs: dict[str, Any] = {}
        findings_by_name: dict[str, Any] = {}
        placement: list[Finding] = []
        events: list[Event] = []
        new_events: list[Event] = []
        reused_all = True
        for item in iter_project_files(self.root, project):
            if isinstance(item, Finding):
                placement.append(item)
                continue
            st_sig = _file_signature(self.root, item)
            files[item.rel_path] = st_sig
            if old_files.get(item.rel_path) == st_sig and (
                item.rel_path in old_docs or item.rel_path in old_findings
            ):
                if item.rel_path in old_docs:
                    docs[item.rel_path] = old_docs[item.rel_path]
                    events.append(Event.from_document(old_docs[item.rel_path]))
                else:
                    findings_by_name[item.rel_path] = old_findings[item.rel_path]
                continue
            result = _read_and_parse(self.root, item)
            if isinstance(result, Finding):
                findings_by_name[item.rel_path] = asdict(result)
                if item.rel_path in old_docs:
                    reused_all = False
                continue
            if item.rel_path in old_docs or item.rel_path in old_findings:
                reused_all = False
            docs[item.rel_path] = result.to_document()
            events.append(result)
            new_events.append(result)
        if set(old_docs) - set(docs):
            reused_all = False

        events, dup_findings = _drop_duplicate_ids(events)
        self._events[project] = events
        state: ProjectState | None = None
        if reused_all and old.get("state") and not dup_findings:
            state = ProjectState.from_cache(old["state"])
            last = (state.last_seq, state.last_id)
            if all((e.seq, e.id) > last for e in new_events):
                for event in sorted(new_events, key=lambda e: (e.seq, e.id)):
                    apply_event(state, event)
            else:
                state = None
        if state is None:
            state = fold_project(project, events)
        file_findings = placement + [Finding(**f) for f in findings_by_name.values()] + dup_findings
        view = project_view(state)
        if not state.created_event:
            view["status"] = "invalid"
        view["findings"] = [finding_view(f) for f in file_findings] + view["findings"]
        if self.use_cache:
            self.cache.write(cache_name, {
                "files": files, "docs": docs, "file_findings_by_name": findings_by_name,
                "state": state.to_cache(),
            })
        return state, view


def _file_signature(root: Path, ref: FileRef) -> list[int]:
    try:
        st = os.lstat(root / ref.rel_path)
    except OSError:
        return [-1, 0, 0, 0]
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_and_parse(root: Path, ref: FileRef) -> Event | Finding:
    data = read_file_bytes(root, ref)
    if isinstance(data, Finding):
        return data
    return parse_event(ref, data)


def _drop_duplicate_ids(events: list[Event]) -> tuple[list[Event], list[Finding]]:
    seen: set[str] = set()
    kept: list[Event] = []
    findings: list[Finding] = []
    for event in sorted(events, key=lambda e: (e.seq, e.id)):
        if event.id in seen:
            findings.append(Finding(reason=f"duplicate event id {event.id}", event_id=event.id,
                                    type=event.type, seq=event.seq))
            continue
        seen.add(event.id)
        kept.append(event)
    return kept, findings


def fold_blobs(blobs: Iterable[tuple[str, bytes]]) -> tuple[dict[str, ProjectState], list[Finding]]:
    """Fold event files read from a git tree (for `--at REV` and `verify`)."""
    by_project: dict[str, list[Event]] = {}
    findings: list[Finding] = []
    for path, data in blobs:
        ref = ref_from_path(path)
        if isinstance(ref, Finding):
            findings.append(ref)
            continue
        by_project.setdefault(ref.project, [])
        result = parse_event(ref, data)
        if isinstance(result, Finding):
            findings.append(result)
        else:
            by_project[ref.project].append(result)
    states: dict[str, ProjectState] = {}
    for project, events in sorted(by_project.items()):
        kept, dups = _drop_duplicate_ids(events)
        findings.extend(dups)
        states[project] = fold_project(project, kept)
    return states, findings
