"""Specs become projects; the spec's author accepts a project or asks for changes."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.adapters.clock import new_ulid
from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.core import events as ev
from orchestrator.core.state import ProjectStatus
from orchestrator.errors import ProjectNotFoundError, UsageError
from orchestrator.runtime.workspace import Workspace

SPECS_DIR = "specs"


def spec_title_and_author(text: str) -> tuple[str, str]:
    title = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("# ")), "")
    match = re.search(r"^\s*Author:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
    return title[:200], (match.group(1).strip()[:200] if match else "")


def _project_id(ws: Workspace, spec_path: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", Path(spec_path).stem.lower()).strip("-")[:50] or "project"
    taken = set(ws.reader.projects())
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    return candidate


def claimed_specs(ws: Workspace) -> dict[str, str]:
    return {s.spec_path: p for p, s in ws.reader.states().items() if s.spec_path}


def create_project(ws: Workspace, spec_path: str, text: str, commit: str) -> str:
    project = _project_id(ws, spec_path)
    title, author = spec_title_and_author(text)
    ws.log.append(project, [ev.NewEvent(
        payload=ev.ProjectCreated(spec_path=spec_path, spec_commit=commit, title=title,
                                  author=author),
        actor="system", request_id=f"spec-{commit[:12]}" if commit else None)])
    return project


def adopt_specs(ws: Workspace) -> list[str]:
    """Committed specs under specs/ that no project claims yet become projects."""
    head = ws.repo.head()
    if head is None:
        return []
    claimed = claimed_specs(ws)
    created = []
    for path, data in ws.repo.read_tree_files(head, SPECS_DIR):
        if path.endswith(".md") and path not in claimed:
            created.append(create_project(ws, path, data.decode("utf-8", "replace"), head))
    return created


def submit(ws: Workspace, spec: str) -> tuple[str, bool]:
    """The project of a spec (committing the spec first if needed); True if it is new."""
    path = Path(spec).resolve()
    try:
        rel = path.relative_to(ws.root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"spec {spec} is outside the repository {ws.root}") from None
    if not path.is_file():
        raise UsageError(f"spec {spec} does not exist")
    if rel.startswith((".git/", ".orchestrator/", EVENTS_DIR)) or not rel.endswith(".md"):
        raise UsageError(f"spec {spec} must be a Markdown file outside .git/ and .orchestrator/")
    claimed = claimed_specs(ws)
    if rel in claimed:
        return claimed[rel], False
    data = path.read_bytes()
    head = ws.repo.head()
    committed = dict(ws.repo.read_tree_files(head, rel)) if head else {}
    if committed.get(rel) != data:
        ws.repo.commit_files({rel: data}, f"spec: {rel}\n")
    return create_project(ws, rel, data.decode("utf-8", "replace"), ws.repo.head() or ""), True


def _project_state(ws: Workspace, project: str) -> ProjectStatus:
    if project not in ws.reader.projects():
        raise ProjectNotFoundError(f"no project '{project}'; 'orch status' lists them")
    return ws.reader.states([project])[project].status


def accept(ws: Workspace, project: str, message: str = "") -> ev.Event:
    status = _project_state(ws, project)
    if status != ProjectStatus.COMPLETED:
        raise UsageError(f"project '{project}' is {status.value}; only a completed project "
                         "can be accepted")
    return ws.log.append(project, [ev.NewEvent(payload=ev.ProjectAccepted(message=message),
                                               actor="spec")])[0]


def request_changes(ws: Workspace, project: str, message: str) -> ev.Event:
    status = _project_state(ws, project)
    if status != ProjectStatus.COMPLETED:
        raise UsageError(f"project '{project}' is {status.value}; changes can be requested "
                         "once it is completed")
    if not message.strip():
        raise UsageError("say what to change with --message")
    state = ws.reader.states([project])[project]
    return ws.log.append(project, [ev.NewEvent(
        payload=ev.ProjectChangesRequested(message=message.strip()), actor="spec",
        request_id=f"changes-{project}-round{state.round + 1}-{new_ulid()[-8:].lower()}")])[0]


def retry(ws: Workspace, project: str, reaction: str | None = None) -> list[str]:
    """`orch retry`: the reactions that wait for a person after failing closed too often (the
    one named, or all) may run again; returns their labels. Nothing runs until `orch run`."""
    _project_state(ws, project)
    state = ws.reader.states([project])[project]
    waiting = sorted({f.reaction for f in state.failing.values() if f.waiting})
    failed = sorted({f.reaction for f in state.failing.values()})
    if reaction is not None:
        if reaction not in failed:
            known = ", ".join(failed) or "none"
            raise UsageError(f"project '{project}' has no failed reaction '{reaction}'; "
                             f"failed ones: {known}")
        chosen = [reaction]
    elif waiting:
        chosen = waiting
    else:
        raise UsageError(f"no reaction of project '{project}' waits for a retry; "
                         "'orch status' shows the failed ones")
    ws.log.append(project, [ev.NewEvent(payload=ev.ReactionRetried(reactions=chosen),
                                        actor="spec")])
    return chosen
