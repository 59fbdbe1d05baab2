"""Specs become projects; the spec's author accepts a project or asks for changes."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.clock import new_ulid
from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.core import events as ev
from orchestrator.core.config import Config
from orchestrator.core.specs import SPECS_DIR, project_id_for, spec_size_error, why_not_a_spec
from orchestrator.core.state import ProjectStatus
from orchestrator.errors import ProjectNotFoundError, UsageError
from orchestrator.runtime.workspace import Workspace


def spec_title_and_author(text: str) -> tuple[str, str]:
    title = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("# ")), "")
    match = re.search(r"^\s*Author:\s*(.+)$", text, re.MULTILINE | re.IGNORECASE)
    return title[:200], (match.group(1).strip()[:200] if match else "")


def _project_id(ws: Workspace, spec_path: str) -> str:
    return project_id_for(spec_path, set(ws.reader.projects()))


def claimed_specs(ws: Workspace) -> dict[str, str]:
    return {s.spec_path: p for p, s in ws.reader.states().items() if s.spec_path}


def create_project(ws: Workspace, spec_path: str, text: str, commit: str,
                   project: str | None = None) -> str:
    project = project or _project_id(ws, spec_path)
    title, author = spec_title_and_author(text)
    ws.log.append(project, [ev.NewEvent(
        payload=ev.ProjectCreated(spec_path=spec_path, spec_commit=commit, title=title,
                                  author=author),
        actor="system", request_id=f"spec-{commit[:12]}" if commit else None)])
    return project


@dataclass(frozen=True)
class SpecCandidate:
    """A committed file under specs/ that no project claims: why it is not a spec, or why
    the spec is refused (over the size limit), if either."""

    path: str
    text: str
    size: int
    skipped: str | None
    refused: str | None


def unclaimed_specs(ws: Workspace, config: Config) -> tuple[str | None, list[SpecCandidate]]:
    """HEAD and the committed files under specs/ that no project claims yet."""
    head = ws.repo.head()
    if head is None:
        return None, []
    claimed = claimed_specs(ws)
    found = []
    for path, data in ws.repo.read_tree_files(head, SPECS_DIR):
        if path in claimed or path.endswith("/.gitkeep"):
            continue
        text = data.decode("utf-8", "replace")
        found.append(SpecCandidate(path, text, len(data),
                                   why_not_a_spec(path, text, config.specs.ignore),
                                   spec_size_error(path, len(data))))
    return head, found


def adopt_specs(ws: Workspace, config: Config,
                echo: Callable[[str], None] = lambda _: None,
                only: str | None = None) -> list[str]:
    """Committed specs under specs/ that no project claims yet become projects (only the one
    that starts project `only`, when named); a spec over the size limit is named in one line
    and left alone."""
    head, candidates = unclaimed_specs(ws, config)
    created = []
    for project, c in new_projects(ws, candidates).items():
        if head is None or only is not None and project != only:
            continue
        if c.refused is not None:
            echo(f"Skipped: {c.refused}")
        else:
            created.append(create_project(ws, c.path, c.text, head, project))
    return created


def new_projects(ws: Workspace, candidates: list[SpecCandidate]) -> dict[str, SpecCandidate]:
    """The project each spec that starts one would start, named as adopting them all in
    order would name them (a plan job adopting one of them names it the same)."""
    taken = set(ws.reader.projects())
    found: dict[str, SpecCandidate] = {}
    for c in candidates:
        if c.skipped is None:
            project = project_id_for(c.path, taken) if c.refused is None else c.path
            taken.add(project)
            found[project] = c
    return found


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
    too_large = spec_size_error(rel, len(data))
    if too_large:
        raise UsageError(too_large)
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


def cancel(ws: Workspace, project: str, reason: str) -> ev.Event:
    """End a project: its reactions stop, its history stays."""
    status = _project_state(ws, project)
    if status in (ProjectStatus.ACCEPTED, ProjectStatus.CANCELLED):
        raise UsageError(f"project '{project}' is {status.value} already; nothing to cancel")
    if not reason.strip():
        raise UsageError("say why the project ends with -m")
    return ws.log.append(project, [ev.NewEvent(
        payload=ev.ProjectCancelled(reason=reason.strip()[:2000]), actor="spec")])[0]


def request_changes(ws: Workspace, project: str, message: str) -> tuple[ev.Event, str]:
    """The next round, on the spec as committed now; returns the event and a note for the
    author when the work tree holds edits of the spec that this round will not see."""
    status = _project_state(ws, project)
    if status != ProjectStatus.COMPLETED:
        raise UsageError(f"project '{project}' is {status.value}; changes can be requested "
                         "once it is completed")
    if not message.strip():
        raise UsageError("say what to change with --message")
    state = ws.reader.states([project])[project]
    commit, note = _spec_commit_now(ws, state.spec_path) if state.spec_path else ("", "")
    return ws.log.append(project, [ev.NewEvent(
        payload=ev.ProjectChangesRequested(message=message.strip(), spec_commit=commit),
        actor="spec",
        request_id=f"changes-{project}-round{state.round + 1}-{new_ulid()[-8:].lower()}")])[0], note


def _spec_commit_now(ws: Workspace, spec_path: str) -> tuple[str, str]:
    """The last commit that changed the spec (its spec_ref for the next round), and a note
    when the work tree's copy differs from it."""
    last = None
    for change in ws.repo.path_history(spec_path):
        if change.path == spec_path:
            last = change
    if last is None or last.status == "D":
        raise UsageError(f"spec {spec_path} is not in the last commit; restore it (or commit "
                         "it) before asking for changes")
    committed = dict(ws.repo.read_tree_files(last.commit, spec_path)).get(spec_path)
    on_disk = ws.root / spec_path
    try:
        edited = on_disk.read_bytes() != committed
    except OSError:
        edited = True
    note = (f"{spec_path} has edits that are not committed; this round builds it as "
            f"committed in {last.commit[:12]} (commit the edits, then ask again)"
            if edited else "")
    return last.commit, note


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
