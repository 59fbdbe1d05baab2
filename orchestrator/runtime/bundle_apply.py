"""`orch apply`: plans' bundles checked against the current log, in order, then written in
one commit, or nothing of them when one breaks a rule (the rules: core/bundle_rules.py).

Each bundle is read and checked whole first (form, paths, sizes, counts); then its events,
project by project, against the log at the commit it was planned from and against the log
as it is now with the bundles before it applied. What another worker did or claimed since
the plan began is dropped with a notice, with the files only it brought; the rest is kept.
Event files keep their ids and get the next seqs of the current log, so what a later event
names as its causation still resolves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.core.bundle_rules import RuleBroken, check_project
from orchestrator.core.config import Config
from orchestrator.core.events import Event, NewEvent
from orchestrator.core.flow import FlowSettings
from orchestrator.core.state import ProjectState
from orchestrator.runtime.bundle import Bundle, BundleRefused, project_of, read_bundle
from orchestrator.runtime.workspace import Workspace

AUTHOR_TYPES = {"accept": "project.accepted", "request-changes": "project.changes_requested"}


@dataclass
class ApplyReport:
    events: int = 0
    files: int = 0
    already_applied: int = 0
    dropped: list[str] = field(default_factory=list)
    """`[project] type id: reason` of what the log made void since the plans began."""

    def as_dict(self) -> dict[str, object]:
        return {"events": self.events, "files": self.files,
                "already_applied": self.already_applied, "dropped": self.dropped}


def apply_bundles(ws: Workspace, sources: list[Path], config: Config,
                  author: tuple[str, str] | None = None) -> ApplyReport:
    """Check every bundle, in the order given, against the current log; then write what is
    kept in one commit. Applying a bundle twice writes it once.

    author is (command, project) of what the spec's author asked this run for: the one
    event that may name no causation (a plan job cannot forge an acceptance)."""
    bundles = [read_bundle(src) for src in sources]
    from orchestrator.adapters.clock import utcnow

    # now: a lease a plan took over must have run out by the apply's clock, not the plan's.
    settings = FlowSettings(max_review_rounds=config.max_review_rounds,
                            max_qa_rework=config.max_qa_rework, loop_guard=config.loop_guard,
                            max_failures=config.max_failures,
                            review_mode=config.review.mode, now=utcnow())
    known = set(ws.reader.projects())
    current: dict[str, ProjectState] = {}
    logged: dict[str, set[str]] = {}
    report = ApplyReport()
    staged: list[tuple[str, list[Event], dict[str, bytes]]] = []
    for bundle in bundles:
        _check_files_have_events(bundle)
        bases = _base_states(ws, bundle, known)
        for project, events in sorted(bundle.events.items()):
            if project not in current:
                current[project] = (ws.reader.states([project])[project] if project in known
                                    else ProjectState(id=project))
                logged[project] = ({e.id for e in ws.reader.events(project)}
                                   if project in known else set())
            allowed = AUTHOR_TYPES.get(author[0], "") if author and author[1] == project \
                else ""
            try:
                verdict = check_project(events, bases[project], current[project],
                                        logged[project], settings, bundle.worker, allowed)
            except RuleBroken as exc:
                raise BundleRefused(f"{bundle.src}: {exc}") from None
            if verdict.state is not None:
                current[project] = verdict.state
            logged[project] |= {e.id for e in verdict.kept}
            report.already_applied += verdict.already
            report.dropped += [f"[{project}] {line}" for line in verdict.dropped]
            files = _files_kept(bundle, project, events, verdict.kept)
            if verdict.kept:
                staged.append((project, verdict.kept, files))
    for project, events, files in staged:
        report.events += len(ws.log.stage(project, [_as_new(e) for e in events],
                                          check=False, files=files))
        report.files += len(files)
    ws.log.commit()
    return report


def _check_files_have_events(bundle: Bundle) -> None:
    for path in bundle.files:
        if project_of(path) not in bundle.events:
            raise BundleRefused(f"bundle file {path}: no event of the bundle's project "
                                f"'{project_of(path)}' came with it")


def _base_states(ws: Workspace, bundle: Bundle, known: set[str]) -> dict[str, ProjectState]:
    """Each project of the bundle as the log had it at the commit the plan began from."""
    from orchestrator.runtime.refresh import fold_blobs

    head = ws.repo.head()
    if bundle.base is not None and (head is None or not ws.repo.is_ancestor(bundle.base, head)):
        raise BundleRefused(f"{bundle.src}: planned from commit {bundle.base}, which is not "
                            "in this branch's history (a plan of another branch?)")
    states: dict[str, ProjectState] = {}
    for project in bundle.events:
        if bundle.base is None or project not in known:
            states[project] = ProjectState(id=project)
            continue
        blobs = ws.repo.read_tree_files(bundle.base, f"{EVENTS_DIR}/{project}")
        folded, _ = fold_blobs(blobs)
        states[project] = copy.deepcopy(folded.get(project, ProjectState(id=project)))
    return states


def _files_kept(bundle: Bundle, project: str, events: list[Event],
                kept: list[Event]) -> dict[str, bytes]:
    """The project's files, less those only dropped events brought (as `orch dispatch` drops
    them when a push loses a race)."""
    if not kept:
        return {}
    kept_ids = {e.id for e in kept}
    only_dropped = {link.ref for e in events if e.id not in kept_ids for link in e.links}
    only_dropped -= {link.ref for e in kept for link in e.links}
    return {p: d for p, d in bundle.files.items()
            if project_of(p) == project and p not in only_dropped}


def _as_new(event: Event) -> NewEvent:
    return NewEvent(payload=event.payload, actor=event.actor, causation_id=event.causation_id,
                    request_id=event.request_id, links=event.links, usage=event.usage,
                    id=event.id, at=event.at)
