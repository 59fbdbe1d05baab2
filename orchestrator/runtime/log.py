"""Appending to the log: events get id, seq and time, are checked against the fold, and are
committed together with the artifacts they produced, one commit per batch."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.clock import new_ulid, utcnow
from orchestrator.adapters.event_reader import LogReader
from orchestrator.adapters.eventfiles import EVENTS_DIR, FILE_NAME_RE
from orchestrator.adapters.eventparse import event_path, serialize
from orchestrator.adapters.git import GitRepo
from orchestrator.adapters.git_branch import MergePlan
from orchestrator.core.events import Event, NewEvent
from orchestrator.core.fold import apply_event
from orchestrator.core.state import ProjectState
from orchestrator.core.text import clean, defuse_mentions
from orchestrator.errors import ConcurrentUpdateError, GitError, UsageError


@dataclass
class _Batch:
    project: str
    events: list[Event]
    files: dict[str, bytes]
    subject: str | None
    merge: MergePlan | None = None


def _commit_groups(staged: list[_Batch]) -> list[list[_Batch]]:
    """Batches in commits, in order: together, except that a merge is a commit of its own."""
    groups: list[list[_Batch]] = []
    for batch in staged:
        if batch.merge is None and groups and groups[-1][0].merge is None:
            groups[-1].append(batch)
        else:
            groups.append([batch])
    return groups


class EventLog:
    """The one writer of a process: appends batches of events (and artifacts) as commits.

    `stage` checks and numbers a batch at once; `commit` writes everything staged, of any
    number of projects, as one commit. `append` is both.
    """

    def __init__(self, repo: GitRepo, reader: LogReader | None = None) -> None:
        self.repo = repo
        self.root = repo.root
        self.reader = reader or LogReader(repo.root, repo)
        self._lock = threading.RLock()
        self._staged: list[_Batch] = []
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: list[tuple[Future[None], dict[str, bytes]]] = []
        self._broken: str | None = None
        self._disk_seq: dict[str, int] = {}
        """Highest seq named on disk when this writer first met a project: files the fold
        could not use still hold their seq. Later seqs come from this writer's own state."""

    def append(
        self,
        project: str,
        new_events: Sequence[NewEvent],
        *,
        files: Mapping[str, bytes] | None = None,
        check: bool = True,
        subject: str | None = None,
        merge: MergePlan | None = None,
    ) -> list[Event]:
        """Write events of one project (and files under project/) in one commit."""
        with self._lock:
            events = self.stage(project, new_events, files=files, check=check, subject=subject,
                                merge=merge)
            self.commit()
            return events

    def stage(
        self,
        project: str,
        new_events: Sequence[NewEvent],
        *,
        files: Mapping[str, bytes] | None = None,
        check: bool = True,
        subject: str | None = None,
        merge: MergePlan | None = None,
    ) -> list[Event]:
        """Give a batch ids, seqs and times and fold it into the in-memory state.

        With `check`, a batch with an event the fold would keep out is refused whole, with
        the reason: what was staged before it is committed, and the project re-read.
        With `merge` (a plan of merging a commit), the batch is committed alone, as that
        merge into the branch (a task's branch landing with the event that says so).
        """
        if not new_events:
            return []
        with self._lock:
            state = self._state(project)
            if project not in self._disk_seq:
                self._disk_seq[project] = _highest_seq_on_disk(self.root, project)
            seq = max(state.last_seq, self._disk_seq[project])
            events: list[Event] = []
            for new in new_events:
                seq += 1
                event = Event(
                    id=new.id or new_ulid(), seq=seq, type=new.type, project=project,
                    request_id=new.request_id or state.request_id or new_ulid(),
                    causation_id=new.causation_id, actor=new.actor, at=new.at or utcnow(),
                    payload=new.payload, links=new.links, usage=new.usage, forced=new.forced,
                )
                if not apply_event(state, event) and check:
                    reason = state.findings[-1].reason
                    # The in-memory state saw part of a batch that is not written: write
                    # what was staged before it, then read the project again from disk.
                    self.commit()
                    self.reader.forget(project)
                    raise UsageError(reason)
                events.append(event)
            self.reader.remember(project, state)
            self._staged.append(_Batch(project, events, dict(files or {}), subject, merge))
            return events

    def has_staged(self) -> bool:
        with self._lock:
            return bool(self._staged)

    def staged_file(self, path: str) -> bytes | None:
        """A file staged for the next commit (agents may read it before it is written)."""
        with self._lock:
            for batch in reversed(self._staged):
                if path in batch.files:
                    return batch.files[path]
            for future, blobs in reversed(self._inflight):
                if path in blobs and not future.done():
                    return blobs[path]
            return None

    def commit(self, wait: bool = True) -> None:
        """Write everything staged as one commit (nothing staged: nothing happens).

        With `wait=False` the commit is written by this log's one writer thread, in order,
        while the caller goes on; `drain()` waits for it and raises what it raised.
        """
        with self._lock:
            self._raise_failed()
            if not self._staged:
                if wait:
                    self.drain()
                return
            staged, self._staged = self._staged, []
            if wait:
                self.drain()
            for group in _commit_groups(staged):
                blobs: dict[str, bytes] = {}
                events: list[Event] = []
                for batch in group:
                    blobs.update({event_path(e): serialize(e) for e in batch.events})
                    blobs.update(batch.files)
                    events.extend(batch.events)
                subject = group[0].subject if len(group) == 1 else None
                message = commit_message(events, subject)
                projects = {b.project for b in group}
                merge = group[0].merge
                if wait:
                    self._write(blobs, message, projects, merge)
                    continue
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(1, thread_name_prefix="orch-writer")
                self._inflight.append(
                    (self._writer.submit(self._write, blobs, message, projects, merge), blobs))

    def drain(self) -> None:
        """Wait for every commit handed to the writer thread; raise the first failure (after
        which the log writes again, from what is on disk)."""
        with self._lock:
            for future, _ in self._inflight:
                future.exception()
            try:
                self._raise_failed()
            finally:
                self._broken = None

    def _raise_failed(self) -> None:
        done = [(f, b) for f, b in self._inflight if f.done()]
        self._inflight = [(f, b) for f, b in self._inflight if not f.done()]
        for future, _ in done:
            error = future.exception()
            if error is not None:
                # What was staged since may build on the batch that failed: drop it too, and
                # read those projects again from disk.
                for batch in self._staged:
                    self.reader.forget(batch.project)
                self._staged = []
                raise error

    def _write(self, blobs: dict[str, bytes], message: str, projects: set[str],
               merge: MergePlan | None = None) -> None:
        """One commit. The branch moving under us (a person committing meanwhile) is retried
        on the new head: our files are new paths. After a failure nothing queued behind it is
        written: later batches build on this one, and a log with a hole in it is worse than
        a run that stops (the next run decides it all again)."""
        if self._broken is not None:
            raise GitError(f"not written: an earlier commit failed ({self._broken})")
        try:
            for attempt in range(3):
                try:
                    if merge is not None:
                        self.repo.branches.merge_into_current(merge, blobs, message)
                    else:
                        self.repo.commit_files(blobs, message)
                    return
                except ConcurrentUpdateError:
                    if attempt == 2:
                        raise
        except BaseException as exc:
            self._broken = str(exc)
            for project in projects:
                self.reader.forget(project)
            raise

    def forget_disk(self) -> None:
        """The branch moved to other commits (a fetch and rebase): read seqs from disk again."""
        with self._lock:
            self._disk_seq.clear()
            self.reader.invalidate()

    def project_state(self, project: str) -> ProjectState:
        return self._state(project)

    def next_seq(self, project: str) -> int:
        """The seq the next event of project gets: one above all this clone has seen."""
        with self._lock:
            return max(self._state(project).last_seq, _highest_seq_on_disk(self.root, project)) + 1

    def event_ids_on_disk(self, project: str) -> set[str]:
        pdir = self.root / EVENTS_DIR / project
        ids: set[str] = set()
        for shard in _listdir(pdir):
            ids.update(n[9:35] for n in _listdir(pdir / shard) if FILE_NAME_RE.match(n))
        return ids

    def _state(self, project: str) -> ProjectState:
        if project in self.reader.known() or project in self.reader.projects():
            return self.reader.states([project])[project]
        return ProjectState(id=project)


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _highest_seq_on_disk(root: Path, project: str) -> int:
    pdir = root / EVENTS_DIR / project
    try:
        shards = sorted(s for s in os.listdir(pdir) if s.isdigit())
    except OSError:
        return 0
    for shard in reversed(shards):
        try:
            names = [n for n in os.listdir(pdir / shard) if FILE_NAME_RE.match(n)]
        except OSError:
            continue
        if names:
            return int(max(names)[:8])
    return 0


def commit_message(events: Sequence[Event], subject: str | None = None) -> str:
    """Subject line that reads as a step of the story, then one trailer block per event."""
    first = events[0]
    if subject is None:
        if len(events) == 1:
            what = first.payload.subject()
            subject = f"{first.type}{' ' + what if what and ':' not in what else ''}"
        else:
            types = sorted({e.type for e in events})
            subject = f"{len(events)} events: {', '.join(types)}"
        projects = sorted({e.project for e in events})
        actors = sorted({e.actor for e in events})
        subject = f"[{', '.join(projects)}] {subject} ({', '.join(actors[:3])}" + (
            ", ...)" if len(actors) > 3 else ")")
    lines = [defuse_mentions(clean(subject, 200)), ""]
    for e in events:
        lines.append(f"Orch-Event: {e.id} {e.type} seq={e.seq}")
        if e.causation_id:
            lines.append(f"Orch-Causation: {e.causation_id}")
        lines.append(f"Orch-Actor: {e.actor}")
        if e.usage is not None:
            lines.append(f"Orch-Model: {e.usage.model}")
            lines.append(f"Orch-Tokens: {e.usage.prompt_tokens + e.usage.completion_tokens}")
    return "\n".join(lines) + "\n"
