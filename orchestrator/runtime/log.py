"""Appending to the log: events get id, seq and time, are checked against the fold, and are
committed together with the artifacts they produced, one commit per batch."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.adapters.clock import new_ulid, utcnow
from orchestrator.adapters.eventfiles import EVENTS_DIR, FILE_NAME_RE, event_path, serialize
from orchestrator.adapters.git import GitRepo
from orchestrator.core.events import Event, NewEvent
from orchestrator.core.fold import apply_event
from orchestrator.core.state import ProjectState
from orchestrator.errors import UsageError
from orchestrator.runtime.reader import LogReader


class EventLog:
    """The one writer of a process: appends batches of events (and artifacts) as commits."""

    def __init__(self, repo: GitRepo, reader: LogReader | None = None) -> None:
        self.repo = repo
        self.root = repo.root
        self.reader = reader or LogReader(repo.root, repo)
        self._lock = threading.Lock()

    def append(
        self,
        project: str,
        new_events: Sequence[NewEvent],
        *,
        files: Mapping[str, bytes] | None = None,
        check: bool = True,
        subject: str | None = None,
    ) -> list[Event]:
        """Write events of one project (and files under project/) in one commit.

        With `check`, the batch is folded onto the current state first and refused whole,
        with the reason, if any event would be kept out of the state.
        """
        if not new_events:
            return []
        with self._lock:
            state = self._state(project)
            seq = max(state.last_seq, _highest_seq_on_disk(self.root, project))
            events: list[Event] = []
            for new in new_events:
                seq += 1
                event = Event(
                    id=new_ulid(), seq=seq, type=new.type, project=project,
                    request_id=new.request_id or state.request_id or new_ulid(),
                    causation_id=new.causation_id, actor=new.actor, at=utcnow(),
                    payload=new.payload, links=new.links, usage=new.usage,
                )
                if not apply_event(state, event) and check:
                    # The in-memory state saw part of a batch that is not written: drop it.
                    self.reader.forget(project)
                    raise UsageError(state.findings[-1].reason)
                events.append(event)
            blobs = {event_path(e): serialize(e) for e in events}
            for path, data in (files or {}).items():
                blobs[path] = data
            try:
                self.repo.commit_files(blobs, commit_message(events, subject))
            except BaseException:
                self.reader.forget(project)
                raise
            self.reader.remember(project, state)
            return events

    def _state(self, project: str) -> ProjectState:
        if project in self.reader.projects():
            return self.reader.states([project])[project]
        return ProjectState(id=project)


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
        subject = f"[{first.project}] {subject} ({first.actor})"
    lines = [subject[:200], ""]
    for e in events:
        lines.append(f"Orch-Event: {e.id} {e.type} seq={e.seq}")
        if e.causation_id:
            lines.append(f"Orch-Causation: {e.causation_id}")
        lines.append(f"Orch-Actor: {e.actor}")
        if e.usage is not None:
            lines.append(f"Orch-Model: {e.usage.model}")
            lines.append(f"Orch-Tokens: {e.usage.prompt_tokens + e.usage.completion_tokens}")
    return "\n".join(lines) + "\n"
