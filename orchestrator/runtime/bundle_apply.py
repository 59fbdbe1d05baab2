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
from orchestrator.adapters.git_branch import MergePlan
from orchestrator.core.bundle_rules import RuleBroken, check_project
from orchestrator.core.config import Config
from orchestrator.core.events import Event, NewEvent, TaskCompleted
from orchestrator.core.flow import FlowSettings
from orchestrator.core.fold import apply_event
from orchestrator.core.review_events import TaskMerged
from orchestrator.core.state import ProjectState
from orchestrator.runtime.bundle import Bundle, BundleRefused, project_of, read_bundle
from orchestrator.runtime.task_branches import TaskBranches
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
    start = ws.repo.head()  # as published: task branches are cut from nothing unpushed
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
    branches = _Branches(ws, start)
    for project, events, files in staged:
        state = ws.reader.states([project])[project] if project in known else \
            ProjectState(id=project)
        for batch, batch_files, merge in branches.batches(project, state, events, files,
                                                          report, bundles):
            report.events += len(ws.log.stage(project, [_as_new(e) for e in batch],
                                              check=False, files=batch_files, merge=merge))
            report.files += len(batch_files)
    ws.log.commit()
    branches.clean_up()
    return report


class _Branches:
    """Task branches of the bundles, made again here: each `task.completed` a plan made on
    a branch gets its commit anew from the bundle's checked files (cut from the main branch
    as this apply found it, or from where the log left the task's branch), its events are
    pointed at that commit, and each `task.merged` becomes a merge of it into the main
    branch, alone in its commit. A merge that would conflict with what is on the main
    branch now is dropped with what answers it: the merge runs again and finds the conflict.
    """

    def __init__(self, ws: Workspace, start: str | None) -> None:
        self.ws = ws
        self.tasks = TaskBranches(ws, lambda path: None)
        self.tasks.base = lambda: start
        self.start = start
        self.moved: dict[str, str] = {}
        """A plan's branch commit -> the commit made here for it."""
        self.made: dict[str, str] = {}
        """Task branch -> its last commit made here."""
        self.merged_paths: set[str] = set()
        """What the merges of this apply write."""

    def batches(self, project: str, state: ProjectState, events: list[Event],
                files: dict[str, bytes], report: ApplyReport, bundles: list[Bundle]
                ) -> list[tuple[list[Event], dict[str, bytes], MergePlan | None]]:
        heads = {sha: f for b in bundles for sha, f in b.heads.items()}
        # Each event sees the task as the events before it left it (assigned in the same
        # bundle, its attempt, the conflicts it was sent back for).
        moving = copy.deepcopy(state)
        moved = []
        for e in events:
            moved.append(self._moved(project, moving, e, heads))
            apply_event(moving, moved[-1])
        events = moved
        merged_files = {path for e in events if isinstance(e.payload, TaskMerged)
                        for path in e.payload.files}
        artifacts = {path for f in heads.values() for path in f}
        plain_files = {p: d for p, d in files.items()
                       if p not in merged_files and p not in artifacts}
        out: list[tuple[list[Event], dict[str, bytes], MergePlan | None]] = []
        pending: list[Event] = []
        files_left = plain_files  # with the first plain batch
        void: set[str] = set()
        for e in events:
            if e.causation_id in void:
                void.add(e.id)
                report.dropped.append(f"[{project}] {e.type} {e.id}: it answers "
                                      f"{e.causation_id}, which was dropped")
                continue
            if not isinstance(e.payload, TaskMerged):
                pending.append(e)
                continue
            plan = self._merge_plan(e.payload.head)
            # Planned on the main branch as this apply found it: a path an earlier merge of
            # this apply wrote counts as a conflict too (two lanes' tasks on one file).
            overlap = sorted(set(plan.changes) & self.merged_paths) if plan else []
            if plan is None or plan.conflicts or overlap:
                void.add(e.id)
                why = ("its commit is not in this clone" if plan is None else
                       "its merge conflicts with the main branch "
                       f"({', '.join(plan.conflicts or overlap)})")
                report.dropped.append(f"[{project}] {e.type} {e.id}: {why}")
                continue
            self.merged_paths |= set(plan.changes)
            if pending:
                out.append((pending, files_left, None))
                pending, files_left = [], {}
            out.append(([e], {}, plan))
        if pending:
            out.append((pending, files_left, None))
        elif files_left and out:  # no plain event left to carry them: the first merge does
            batch, extra, merge = out[0]
            out[0] = (batch, {**extra, **files_left}, merge)
        return out

    def _moved(self, project: str, state: ProjectState, e: Event,
               heads: dict[str, dict[str, bytes]]) -> Event:
        p = e.payload
        if isinstance(p, TaskCompleted) and p.head in heads and p.task_id in state.tasks:
            task = state.tasks[p.task_id]
            branch, head = self.tasks.commit_attempt(project, task, heads[p.head])
            self.moved[p.head] = self.made[branch] = head
        elif not (isinstance(p, TaskCompleted | TaskMerged) and p.head in self.moved):
            return e
        head = self.moved[p.head]
        links = tuple(link.model_copy(update={"ref": head})
                      if link.kind == "commit" and link.ref == p.head else link
                      for link in e.links)
        return e.model_copy(update={"payload": p.model_copy(update={"head": head}),
                                    "links": links})

    def clean_up(self) -> None:
        """The branches made here whose commits the main branch now holds are deleted."""
        for branch, head in self.made.items():
            self.ws.repo.branches.delete(branch, head)

    def _merge_plan(self, head: str) -> MergePlan | None:
        if self.start is None or not self.ws.repo.has_commit(head):
            return None
        return self.ws.repo.branches.plan_merge(self.start, head)


def _check_files_have_events(bundle: Bundle) -> None:
    for path in bundle.files:
        if project_of(path) not in bundle.events:
            raise BundleRefused(f"bundle file {path}: no event of the bundle's project "
                                f"'{project_of(path)}' came with it")


def _base_states(ws: Workspace, bundle: Bundle, known: set[str]) -> dict[str, ProjectState]:
    """Each project of the bundle as the log had it at the commit the plan began from."""
    from orchestrator.adapters.event_refresh import fold_blobs

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
