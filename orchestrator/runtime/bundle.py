"""Safe outputs: a plan's work as a bundle (its events and files, nothing pushed), and
`orch apply`, which checks every part of a bundle against the current log before it writes
any of it (as gh-aw's safe outputs do: the job that holds the model key cannot write).

A bundle is a folder: `bundle.json` (format, the commits it was planned between, and the
list of paths) and `tree/<path>` with each file's bytes. Event files keep their names from
the plan; apply gives them the next seqs of the current log, and keeps their ids, so what a
later event of the bundle names as its causation still resolves.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.adapters.eventfiles import EVENTS_DIR, ref_from_path
from orchestrator.adapters.eventparse import parse_event
from orchestrator.adapters.git_commit import check_path
from orchestrator.core.config import Config
from orchestrator.core.events import Event, NewEvent
from orchestrator.core.flow import FlowSettings, pending_reactions
from orchestrator.core.fold import apply_event
from orchestrator.core.paths import MAX_ARTIFACT_BYTES, PathRefused, confine
from orchestrator.core.state import ProjectState
from orchestrator.errors import GitError, UsageError
from orchestrator.runtime.artifacts import TRANSCRIPTS_DIR
from orchestrator.runtime.workspace import Workspace

FORMAT = "orch-bundle/1"
MANIFEST = "bundle.json"
MAX_PATHS = 5000
MAX_EVENTS_PER_TYPE = 1000
MAX_TRANSCRIPT_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024


class BundleRefused(UsageError):
    """Raised when a bundle breaks a rule; names the part and the rule, and nothing of the
    bundle has been written."""


def export_bundle(ws: Workspace, base: str | None, out: Path) -> dict[str, Any]:
    """Write what the commits since base added to the log and to project/ as a bundle."""
    head = ws.repo.head()
    if head is None:
        raise UsageError("nothing to bundle: the branch has no commit yet")
    changes = ws.repo.changed_files(base, head) if base != head else {}
    refused = [p for p, data in changes.items() if data is None or not _bundled(p)]
    if refused:
        raise UsageError(f"the plan changed {refused[0]}; a bundle carries only new or "
                         f"changed events and files under project/ or {TRANSCRIPTS_DIR}/")
    paths = sorted(changes)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; name a new folder for the bundle")
    tree = out / "tree"
    for path in paths:
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(changes[path] or b"")
    manifest = {"format": FORMAT, "base": base, "head": head, "paths": paths}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _bundled(path: str) -> bool:
    return path.startswith((f"{EVENTS_DIR}/", "project/", f"{TRANSCRIPTS_DIR}/"))


@dataclass
class _Checked:
    events: dict[str, list[Event]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


AUTHOR_TYPES = {"accept": "project.accepted", "request-changes": "project.changes_requested"}


def apply_bundle(ws: Workspace, src: Path, config: Config,
                 author: tuple[str, str] | None = None) -> dict[str, Any]:
    """Check the whole bundle against the current log; then write it in one commit.

    Applying a bundle twice writes it once: events whose ids the log holds are skipped.
    author is (command, project) of what the spec's author asked this run for: the one
    event of the bundle that may name no causation (the plan job cannot forge it)."""
    checked = _read(src)
    settings = FlowSettings(max_review_rounds=config.max_review_rounds,
                            max_qa_rework=config.max_qa_rework, loop_guard=config.loop_guard,
                            review_mode=config.review.mode)
    known = set(ws.reader.projects())
    fresh: dict[str, list[Event]] = {}
    for project, events in checked.events.items():
        current = ws.reader.states([project])[project] if project in known else None
        logged = {e.id for e in ws.reader.events(project)} if project in known else set()
        allowed = AUTHOR_TYPES.get(author[0], "") if author and author[1] == project else ""
        fresh[project] = _check_events(project, events, current, logged, settings, allowed)
    for path in checked.files:
        if _project_of(path) not in checked.events:
            raise BundleRefused(f"bundle file {path}: no event of the bundle's project "
                                f"'{_project_of(path)}' came with it")
    written = 0
    for project, events in fresh.items():
        if events:
            files = {p: d for p, d in checked.files.items() if _project_of(p) == project}
            written += len(ws.log.stage(project, [_as_new(e) for e in events], check=False,
                                        files=files))
    ws.log.commit()
    total = sum(len(v) for v in checked.events.values())
    return {"events": written, "already_applied": total - written,
            "files": sum(1 for p in checked.files if fresh.get(_project_of(p)))}


def _project_of(path: str) -> str:
    return path.split("/")[1] if path.startswith("project/") else path.split("/")[2]


def _as_new(event: Event) -> NewEvent:
    return NewEvent(payload=event.payload, actor=event.actor, causation_id=event.causation_id,
                    request_id=event.request_id, links=event.links, usage=event.usage,
                    id=event.id, at=event.at)


def _read(src: Path) -> _Checked:
    manifest_path = src / MANIFEST
    if not manifest_path.is_file():
        raise BundleRefused(f"{src} holds no {MANIFEST}; name the folder a plan wrote")
    if manifest_path.stat().st_size > 4 * 1024 * 1024:
        raise BundleRefused(f"{MANIFEST}: over 4 MiB")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleRefused(f"{MANIFEST}: not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleRefused(f"{MANIFEST}: format is not {FORMAT}")
    paths = manifest.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BundleRefused(f"{MANIFEST}: 'paths' is not a list of paths")
    if len(paths) > MAX_PATHS:
        raise BundleRefused(f"bundle: {len(paths)} paths, over the limit of {MAX_PATHS}")
    checked = _Checked()
    total = 0
    per_type: dict[str, int] = {}
    tree = (src / "tree").resolve()
    for path in paths:
        where = f"bundle file {path!r}"
        try:
            check_path(path)
        except GitError as exc:
            raise BundleRefused(f"{where}: {exc}") from None
        if not _bundled(path):
            raise BundleRefused(f"{where}: outside project/, {EVENTS_DIR}/ and "
                                f"{TRANSCRIPTS_DIR}/ (a bundle may write nowhere else)")
        file = tree / path
        if file.is_symlink() or not file.is_file() or tree not in file.resolve().parents:
            raise BundleRefused(f"{where}: missing from the bundle, or a link")
        size = file.stat().st_size
        limit = MAX_TRANSCRIPT_BYTES if path.startswith(TRANSCRIPTS_DIR) else MAX_ARTIFACT_BYTES
        if size > limit:
            raise BundleRefused(f"{where}: {size} bytes, over the limit of {limit}")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise BundleRefused(f"bundle: over {MAX_TOTAL_BYTES} bytes in all")
        data = file.read_bytes()
        if path.startswith(f"{EVENTS_DIR}/"):
            event = _parse(path, data)
            per_type[event.type] = per_type.get(event.type, 0) + 1
            if per_type[event.type] > MAX_EVENTS_PER_TYPE:
                raise BundleRefused(f"bundle: more than {MAX_EVENTS_PER_TYPE} "
                                    f"{event.type} events")
            checked.events.setdefault(event.project, []).append(event)
        else:
            _check_artifact(path)
            checked.files[path] = data
    return checked


def _parse(path: str, data: bytes) -> Event:
    ref = ref_from_path(path)
    if not hasattr(ref, "rel_path"):
        raise BundleRefused(f"bundle file {path!r}: not an event file name "
                            "(<seq>-<id>.<type>.yaml in a shard folder)")
    found = parse_event(ref, data)  # type: ignore[arg-type]
    if not isinstance(found, tuple):
        raise BundleRefused(f"bundle event {path}: {found.reason}")
    return found[0]


def _check_artifact(path: str) -> None:
    parts = path.split("/")
    try:
        if path.startswith("project/"):
            if len(parts) < 3 or confine(parts[1], "", "/".join(parts[2:])) != path:
                raise PathRefused(f"path '{path}' is not inside project/<project>/")
        elif len(parts) < 4:
            raise PathRefused(f"path '{path}' is not inside {TRANSCRIPTS_DIR}/<project>/")
        else:
            confine(parts[2], "", "/".join(parts[3:]))
    except PathRefused as exc:
        raise BundleRefused(f"bundle file {path!r}: {exc}") from None


def _check_events(project: str, events: list[Event], current: ProjectState | None,
                  logged: set[str], settings: FlowSettings, author_type: str = ""
                  ) -> list[Event]:
    """The bundle's events of one project that the log does not hold yet, each checked:
    its causation is an event of the log whose reaction is pending, or an earlier event of
    the bundle; and it folds into the state without a finding."""
    state = copy.deepcopy(current) if current is not None else ProjectState(id=project)
    pending = {r.key for r in pending_reactions(state, settings)}
    reactions_seen: set[tuple[str, str]] = set()
    ours: set[str] = set()
    fresh: list[Event] = []
    seq = state.last_seq
    for event in sorted(events, key=lambda e: (e.seq, e.id)):
        where = f"bundle event {event.id} ({event.type} by {event.actor})"
        if event.id in logged:
            ours.add(event.id)
            continue  # applied before (an apply job run twice): nothing to do again
        cause = event.causation_id or ""
        if cause and cause not in ours:
            key = (event.actor, cause)
            if key not in pending and key not in reactions_seen:
                raise BundleRefused(f"{where}: its causation {cause} is not a reaction the "
                                    "current log is waiting for (done already, or never "
                                    "called for)")
            reactions_seen.add(key)
        elif not cause and event.type == author_type and event.actor == "spec":
            author_type = ""  # what the author asked for, once
        elif not cause and event.type != "project.created":
            raise BundleRefused(f"{where}: names no causation (only what the author asked "
                                "this run for may)")
        seq += 1
        placed = event.model_copy(update={"seq": seq})
        if not apply_event(state, placed):
            raise BundleRefused(f"{where}: {state.findings[-1].reason}")
        ours.add(event.id)
        fresh.append(event)
    return fresh
