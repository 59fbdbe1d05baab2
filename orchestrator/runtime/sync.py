"""Sharing the log through one remote: push as compare-and-swap, and on a lost race fetch,
move the unpushed work on top of what came in, renumber it, drop what others already did.

seq is a Lamport clock: an unpushed event is renumbered above every event that came in, so
the log's order is the order of pushes, and a claim that lost a race is seen to have lost (the
fold refuses it) before it is ever pushed. What the fold refuses against the fetched log is
dropped with the files only it produced; a result whose claim was dropped goes with it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.adapters.crash_points import crash_point
from orchestrator.adapters.eventfiles import EVENTS_DIR, FILE_NAME_RE, FileRef
from orchestrator.adapters.eventparse import event_path, parse_event, serialize
from orchestrator.adapters.git_remote import TASK_BRANCHES
from orchestrator.core.events import Event, TaskCompleted
from orchestrator.core.fold import apply_event
from orchestrator.core.review_events import TaskMerged
from orchestrator.errors import PushContendedError
from orchestrator.runtime.log import commit_message
from orchestrator.runtime.workspace import Workspace


@dataclass
class SyncReport:
    pushes: int = 0
    rejections: int = 0
    pushed: bool = False
    kept: int = 0
    contended: int = 0
    """Publishes that lost every race they ran (their commits waited for the next)."""
    dropped: list[str] = field(default_factory=list)
    """Unpushed events the fetched log made void: `type id: reason`."""


def publish(ws: Workspace, remote: str, *, attempts: int = 12, base_delay_s: float = 0.05,
            sleep: Callable[[float], None] = time.sleep) -> SyncReport:
    """Push everything this clone committed in one push; on a lost race fetch, rebase and
    retry with jittered exponential backoff, `attempts` times at most. Never forced."""
    report = SyncReport()
    ws.log.commit()
    ws.log.drain()
    resume = ws.repo.saved_unpushed()  # a crash between moving and recommitting
    if resume is not None:
        rebase(ws, remote, report, resume)
    for attempt in range(attempts):
        head = ws.repo.head()
        upstream = ws.repo.remote_sha(remote)
        if head is None or head == upstream:
            return report
        crash_point("after-commit")
        outcome = ws.repo.push(remote, head, _task_heads(ws, upstream, head))
        report.pushes += 1
        if outcome.accepted:
            crash_point("after-push")
            report.pushed = True
            _delete_merged_branches(ws, remote)
            return report
        report.rejections += 1
        rebase(ws, remote, report, head)
        # Full jitter: racing workers spread out instead of colliding again in step.
        sleep(random.uniform(0, base_delay_s * (2 ** min(attempt, 4))))
    raise PushContendedError(f"the push to '{remote}' lost the race {attempts} times in a row; nothing "
                   "is lost, the commits wait in this clone: run orch again", report.pushes)


def sync(ws: Workspace, remote: str) -> SyncReport:
    """Fetch, and move what this clone has not pushed on top of it (no push)."""
    report = SyncReport()
    ws.log.commit()
    ws.log.drain()
    head = ws.repo.saved_unpushed() or ws.repo.head()
    if head is not None:
        rebase(ws, remote, report, head)
    else:
        upstream = ws.repo.fetch(remote)
        if upstream is not None:
            ws.repo.move_onto(upstream, upstream)
            ws.repo.clear_unpushed()
            _forget(ws)
    return report


def _task_heads(ws: Workspace, upstream: str | None, head: str) -> dict[str, str]:
    """The task branches to push with the main branch: the commit each unpushed
    `task.completed` names, unless the main branch already holds it (merged in the same
    push). Only those: a branch commit whose event was dropped (the claim lost) stays here."""
    if upstream is None:  # the first push to an empty remote: every task branch goes
        return {name: sha for name, sha in ws.repo.branches.names(TASK_BRANCHES).items()
                if not ws.repo.is_ancestor(sha, head)}
    base = ws.repo.merge_base(upstream, head)
    changed = ws.repo.changed_files(base, head) if base else {}
    heads: dict[str, str] = {}
    for e in sorted(_split(changed)[0], key=lambda x: (x.seq, x.id)):
        if isinstance(e.payload, TaskCompleted) and e.payload.branch and e.payload.head:
            heads[e.payload.branch] = e.payload.head
    return {name: sha for name, sha in heads.items() if not ws.repo.is_ancestor(sha, head)}


def _delete_merged_branches(ws: Workspace, remote: str) -> None:
    """Task branches the remote's main branch holds whole are done with: deleted there too
    (each only while it is where it was seen, so nothing pushed to it meanwhile is lost)."""
    upstream = ws.repo.remote_sha(remote)
    if upstream is None:
        return
    merged = {name: sha for name, sha in ws.repo.remote_task_branches(remote).items()
              if ws.repo.is_ancestor(sha, upstream)}
    if merged:
        ws.repo.delete_remote_branches(remote, merged)


@dataclass
class _Part:
    """Unpushed work of orch's, in order: plain changes (squashed together), or a merge of
    a task's branch (replayed as a merge, never flattened into a plain commit)."""

    changes: dict[str, bytes | None]
    merged: str | None = None


def _parts(ws: Workspace, commits: list[tuple[str, str]]) -> list[_Part]:
    parts: list[_Part] = []
    for sha, message in commits:
        if not is_orch_commit(message):
            continue
        parents = ws.repo.parents(sha)
        changes = ws.repo.changed_files(parents[0], sha) if parents else \
            ws.repo.changed_files(None, sha)
        if len(parents) > 1:
            parts.append(_Part(changes, merged=parents[1]))
        elif parts and parts[-1].merged is None:
            parts[-1].changes.update(changes)
        else:
            parts.append(_Part(dict(changes)))
    return parts


def rebase(ws: Workspace, remote: str, report: SyncReport, head: str) -> None:
    upstream = ws.repo.fetch(remote)
    if upstream is None or ws.repo.is_ancestor(upstream, head):
        if ws.repo.saved_unpushed() is not None and ws.repo.head() == head:
            ws.repo.clear_unpushed()
        return
    base = ws.repo.merge_base(upstream, head)
    commits = ws.repo.commits_between(base, head)
    people = [sha for sha, message in commits if not is_orch_commit(message)]
    if people or any(len(ws.repo.parents(sha)) > 1 for sha, _ in commits):
        # A person's commits are replayed as theirs, and a merge as a merge: only orch's own
        # changes are renumbered and recommitted, so nobody's work is ever folded into an
        # orch commit and no task branch is flattened into one.
        parts = _parts(ws, commits)
    else:
        parts = [_Part(ws.repo.changed_files(base, head))]
    _replay(ws, report, upstream, head, people, parts)


def _replay(ws: Workspace, report: SyncReport, upstream: str, head: str,
            people: list[str], parts: list[_Part]) -> None:
    """The unpushed work moved on top of what came in, part by part: a merge of a task's
    branch is made again on the fetched branch. One that would now conflict (another
    task's merge came in) is dropped with its events, so the merge reaction runs again and
    finds the conflict: the task goes back to its Dev, nothing is resolved by taking a side."""
    split = [_split(p.changes) for p in parts]
    void: dict[str, str] = {}
    for part, (events, _) in zip(parts, split, strict=True):
        if part.merged is not None:
            conflicts = ws.repo.branches.plan_merge(upstream, part.merged).conflicts
            if conflicts:
                for e in events:
                    void[e.id] = f"its merge conflicts with what came in ({', '.join(conflicts)})"
    ws.repo.move_onto(upstream, head)
    crash_point("during-push")
    for sha in people:
        ws.repo.replay(sha)
    _forget(ws)
    kept, dropped_files = _renumber(ws, [e for events, _ in split for e in events], report,
                                    void)
    kept_ids = {e.id: e for e in kept}
    for part, (events, files) in zip(parts, split, strict=True):
        mine = [kept_ids[e.id] for e in events if e.id in kept_ids]
        blobs: dict[str, bytes | None] = {event_path(e): serialize(e) for e in mine}
        if part.merged is not None and any(isinstance(e.payload, TaskMerged) for e in mine):
            ws.repo.branches.merge_into_current(part.merged, blobs, commit_message(mine))
            continue
        if part.merged is None:  # a void merge's files came from its branch: not carried
            blobs.update({p: b for p, b in files.items() if p not in dropped_files})
        if mine or any(b is not None for b in blobs.values()):
            message = commit_message(mine) if mine else "orch: work moved onto the fetched branch\n"
            ws.repo.commit_files(blobs, message)
    ws.repo.clear_unpushed()
    _forget(ws)
    report.kept += len(kept)


def is_orch_commit(message: str) -> bool:
    """orch's commits carry an Orch-Event trailer (or, moving work, orch's own subject)."""
    return message.startswith("orch: ") or any(
        line.startswith("Orch-Event: ") for line in message.splitlines())


def _forget(ws: Workspace) -> None:
    ws.reader.invalidate()
    ws.log.forget_disk()


def _split(changed: dict[str, bytes | None]) -> tuple[list[Event], dict[str, bytes | None]]:
    events: list[Event] = []
    files: dict[str, bytes | None] = {}
    for path, data in changed.items():
        parts = path.split("/")
        if path.startswith(EVENTS_DIR + "/") and len(parts) == 5 and data is not None \
                and FILE_NAME_RE.match(parts[-1]):
            parsed = parse_event(FileRef(path, parts[2], parts[3], parts[4]), data)
            if isinstance(parsed, tuple):
                events.append(parsed[0])
                continue
        files[path] = data  # artifacts, transcripts, a person's files: carried over as they are
    return events, files


def _renumber(ws: Workspace, events: list[Event], report: SyncReport,
              void: dict[str, str] | None = None) -> tuple[list[Event], set[str]]:
    """The unpushed events that still stand on the fetched log, renumbered above it (and
    the files only the dropped ones linked); `void` are dropped whatever the fold says."""
    by_project: dict[str, list[Event]] = {}
    for e in events:
        by_project.setdefault(e.project, []).append(e)
    kept: list[Event] = []
    dropped_files: set[str] = set()
    dropped_ids: set[str] = set()
    for project, evs in sorted(by_project.items()):
        state = ws.log.project_state(project)
        seq = ws.log.next_seq(project) - 1
        present = ws.log.event_ids_on_disk(project)
        for e in sorted(evs, key=lambda x: (x.seq, x.id)):
            if e.id in present:
                continue  # pushed before a crash: it is there already
            moved = e.model_copy(update={"seq": seq + 1})
            if void and e.id in void:
                reason = void[e.id]
            elif e.causation_id in dropped_ids:
                reason = f"it answers {e.causation_id}, which was dropped"
            elif apply_event(state, moved):
                kept.append(moved)
                seq += 1
                continue
            else:
                reason = state.findings[-1].reason
            # What answers a dropped event goes with it (causes sort before their effects).
            dropped_ids.add(e.id)
            report.dropped.append(f"{e.type} {e.id}: {reason}")
            dropped_files.update(link.ref for link in e.links
                                 if link.kind in ("artifact", "doc", "report", "transcript"))
        ws.reader.forget(project)
    still_used = {link.ref for e in kept for link in e.links}
    return kept, dropped_files - still_used
