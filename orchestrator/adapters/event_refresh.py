"""Bringing one project's folded state up to date from its files (the reader's heavy half:
parsing, validation and the fold are only imported when something changed)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from orchestrator.adapters.cache import Cache
from orchestrator.adapters.eventfiles import (
    FileRef,
    iter_project_files,
    read_file_bytes,
    ref_from_path,
)
from orchestrator.adapters.eventparse import parse_event
from orchestrator.core.events import Event
from orchestrator.core.fold import apply_event, fold_project
from orchestrator.core.state import Finding, ProjectState
from orchestrator.core.views import finding_view, project_view


def project_cache_name(project: str) -> str:
    return f"projects/{project}.json"


def refresh_project(root: Path, project: str, cache: Cache, use_cache: bool,
                    want_events: bool = True
                    ) -> tuple[ProjectState, dict[str, Any], list[Event] | None]:
    """The project's state, status view and (if wanted) valid events. Only changed files are
    parsed; the fold is incremental when every new event sorts after the folded ones, and
    then the cached events are not even validated again."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # tens of thousands of small objects, none cyclic: collection only costs
    try:
        return _refresh(root, project, cache, use_cache, want_events)
    finally:
        if gc_was_enabled:
            gc.enable()


def _refresh(root: Path, project: str, cache: Cache, use_cache: bool, want_events: bool
             ) -> tuple[ProjectState, dict[str, Any], list[Event] | None]:
    cache_name = project_cache_name(project)
    old = (cache.read(cache_name) if use_cache else None) or {}
    old_files: dict[str, list[int]] = old.get("files", {})
    old_docs: dict[str, Any] = old.get("docs", {})
    old_findings: dict[str, Any] = old.get("file_findings_by_name", {})

    files: dict[str, list[int]] = {}
    docs: dict[str, Any] = {}
    findings_by_name: dict[str, Any] = {}
    placement: list[Finding] = []
    reused: list[dict[str, Any]] = []
    new_events: list[Event] = []
    reused_all = True
    for item in iter_project_files(root, project):
        if isinstance(item, Finding):
            placement.append(item)
            continue
        rel = item.rel_path
        signature = _file_signature(root, item)
        files[rel] = signature
        if old_files.get(rel) == signature and (rel in old_docs or rel in old_findings):
            if rel in old_docs:
                docs[rel] = old_docs[rel]
                reused.append(old_docs[rel])
            else:
                findings_by_name[rel] = old_findings[rel]
            continue
        if rel in old_docs or rel in old_findings:
            reused_all = False
        result = _read_and_parse(root, item)
        if isinstance(result, Finding):
            findings_by_name[rel] = asdict(result)
            continue
        event, doc = result
        docs[rel] = doc
        new_events.append(event)
    if set(old_docs) - set(docs):
        reused_all = False

    state: ProjectState | None = None
    events: list[Event] | None = None
    dup_findings: list[Finding] = []
    new_ids = {e.id for e in new_events}
    if reused_all and old.get("state") and len(new_ids) == len(new_events):
        state = ProjectState.from_cache(old["state"])
        last = (state.last_seq, state.last_id)
        cached_ids = {d["id"] for d in reused}
        if new_ids & cached_ids or not all((e.seq, e.id) > last for e in new_events):
            state = None
        else:
            for event in sorted(new_events, key=lambda e: (e.seq, e.id)):
                apply_event(state, event)
    if state is None or want_events:
        events, dup_findings = drop_duplicate_ids(
            [Event.from_document(d) for d in reused] + new_events)
    else:  # the cached files are unchanged, so are the duplicates among them
        dup_findings = [Finding(**f) for f in old.get("duplicates", [])]
    if state is None:
        assert events is not None
        state = fold_project(project, events)
    file_findings = placement + [Finding(**f) for f in findings_by_name.values()] + dup_findings
    view = project_view(state)
    if not state.created_event:
        view["status"] = "invalid"
    view["findings"] = [finding_view(f) for f in file_findings] + view["findings"]
    if use_cache:
        cache.write(cache_name, {
            "files": files, "docs": docs, "file_findings_by_name": findings_by_name,
            "duplicates": [asdict(f) for f in dup_findings],
            "state": state,  # orjson writes the dataclasses as from_cache reads them
        })
    return state, view, events


def refresh_view(root: str, project: str, use_cache: bool) -> dict[str, Any]:
    """`refresh_project` for a worker process: only the view travels back."""
    return refresh_project(Path(root), project, Cache(Path(root)), use_cache, False)[1]


def _file_signature(root: Path, ref: FileRef) -> list[int]:
    try:
        st = os.lstat(os.path.join(root, ref.rel_path))
    except OSError:
        return [-1, 0, 0, 0]
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_and_parse(root: Path, ref: FileRef) -> tuple[Event, dict[str, Any]] | Finding:
    data = read_file_bytes(root, ref)
    if isinstance(data, Finding):
        return data
    return parse_event(ref, data)


def drop_duplicate_ids(events: list[Event]) -> tuple[list[Event], list[Finding]]:
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
            by_project[ref.project].append(result[0])
    states: dict[str, ProjectState] = {}
    for project, events in sorted(by_project.items()):
        kept, dups = drop_duplicate_ids(events)
        findings.extend(dups)
        states[project] = fold_project(project, kept)
    return states, findings
