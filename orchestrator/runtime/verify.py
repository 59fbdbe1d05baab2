"""`orch verify`: audit the log's whole git history and the tree as it stands."""

from __future__ import annotations

from orchestrator.adapters.event_reader import LogReader
from orchestrator.adapters.eventfiles import EVENTS_DIR, FILE_NAME_RE
from orchestrator.core.events import Event
from orchestrator.core.state import Finding
from orchestrator.runtime.workspace import Workspace


def verify(ws: Workspace) -> tuple[list[Finding], list[Finding]]:
    """(problems, forced): every problem with the log, oldest history first (empty means
    clean), and what events written with `orch emit --force` set off, named apart: a
    person chose to write those, they are not corruption."""
    findings: list[Finding] = []
    findings.extend(_history_findings(ws))
    findings.extend(_changed_in_tree(ws))
    findings.extend(ws.reader.stray_findings())
    fresh = LogReader(ws.root, ws.repo, use_cache=False)
    audited = {project: fresh.audit(project) for project in fresh.projects()}
    for project, (view, _) in audited.items():
        for f in view["findings"]:
            findings.append(Finding(reason=f["reason"], path=f["path"] or "", line=f["line"],
                                    event_id=f["event_id"], type=f["type"]))
        if view["status"] == "invalid":
            findings.append(Finding(reason=f"project '{project}' has no valid project.created",
                                    path=f"{EVENTS_DIR}/{project}"))
    findings.extend(_id_and_causation_findings(
        {project: events for project, (_, events) in audited.items()}))
    forced_ids = {e.id for _, events in audited.values() for e in events if e.forced}
    forced = [f for f in findings if f.event_id in forced_ids]
    return [f for f in findings if f.event_id not in forced_ids], forced


def _changed_in_tree(ws: Workspace) -> list[Finding]:
    """Tracked event files whose content in the work tree is not what was committed.

    git's stat cache flags a file that was only touched or copied (`touch`, `cp -r`): those
    are compared byte for byte with the committed blob, so only a real edit is reported.
    """
    suspects = ws.repo.modified_files(EVENTS_DIR)
    head = ws.repo.head()
    if not suspects or head is None:
        return [Finding(reason="event file changed in the working tree", path=p)
                for p in suspects]
    wanted = set(suspects)
    if len(suspects) > 50:  # one stream of the whole log beats a lookup per file
        committed = {p: d for p, d in ws.repo.read_tree_files(head, EVENTS_DIR) if p in wanted}
    else:
        committed = {p: d for path in suspects for p, d in ws.repo.read_tree_files(head, path)}
    findings = []
    for path in suspects:
        try:
            same = (ws.root / path).read_bytes() == committed.get(path)
        except OSError:
            same = False
        if not same:
            reason = ("event file deleted from the working tree" if not (ws.root / path).exists()
                      else "event file changed in the working tree")
            findings.append(Finding(reason=reason, path=path))
    return findings


def _history_findings(ws: Workspace) -> list[Finding]:
    """Event files are written once: any later change of content is a finding. A deletion
    that a later commit undoes with the very same content (orch restores what a person's
    concurrent commit dropped) leaves the log as it was, and is not."""
    first: dict[str, tuple[str, str]] = {}
    deleted: dict[str, str] = {}
    findings: list[Finding] = []
    for change in ws.repo.path_history(EVENTS_DIR):
        name = change.path.rsplit("/", 1)[-1]
        if not FILE_NAME_RE.match(name):
            continue
        if change.status == "A" and change.path not in first:
            first[change.path] = (change.commit, change.blob)
            continue
        commit, blob = first.get(change.path, ("?", ""))
        if change.status == "D" and change.blob == blob:
            deleted[change.path] = change.commit
            continue
        if change.status == "A" and change.path in deleted and change.blob == blob:
            del deleted[change.path]
            continue
        verb = {"M": "modified", "D": "deleted", "T": "changed type", "A": "re-added"}.get(
            change.status, "changed")
        findings.append(Finding(
            reason=f"{verb} in commit {change.commit[:12]} after its first commit {commit[:12]}",
            path=change.path))
    for path, commit in deleted.items():
        findings.append(Finding(
            reason=f"deleted in commit {commit[:12]} after its first commit "
                   f"{first[path][0][:12]}", path=path))
    return findings


def _id_and_causation_findings(events_of: dict[str, list[Event]]) -> list[Finding]:
    findings: list[Finding] = []
    owner: dict[str, str] = {}
    causations: list[tuple[str, str, str]] = []
    for project, events in events_of.items():
        for event in events:
            if event.id in owner:
                findings.append(Finding(
                    reason=f"event id {event.id} also used in project '{owner[event.id]}'",
                    event_id=event.id, type=event.type))
            owner.setdefault(event.id, project)
            if event.causation_id:
                causations.append((project, event.id, event.causation_id))
    for project, event_id, cause in causations:
        if cause not in owner:
            findings.append(Finding(reason=f"causation {cause} does not resolve to any event",
                                    event_id=event_id))
        elif owner[cause] != project:
            findings.append(Finding(
                reason=f"causation {cause} is an event of project '{owner[cause]}'",
                event_id=event_id))
    return findings
