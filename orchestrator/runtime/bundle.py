"""Safe outputs: a plan's work as a bundle (its events and files, nothing pushed), and the
checks of its form (paths, sizes, counts, event files) that `orch apply` makes before it
checks the events against the log (runtime/bundle_apply.py).

A bundle is a folder: `bundle.json` (format, the commits it was planned between, the
worker whose claims it carries, the list of paths, and the paths of each task branch's
commit) and `tree/<path>` with each file's bytes. Event files keep their names from the
plan. A task branch travels as files, never as git objects: `heads/<commit>/<path>` are the
artifacts of the commit a `task.completed` names, which `orch apply` commits again on the
task's branch (so nothing of a plan job's own making reaches git but checked files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.adapters.eventfiles import EVENTS_DIR, ref_from_path
from orchestrator.adapters.eventparse import parse_event
from orchestrator.adapters.git_commit import check_path
from orchestrator.core.events import Event, TaskCompleted
from orchestrator.core.paths import MAX_ARTIFACT_BYTES, PathRefused, confine
from orchestrator.errors import GitError, UsageError
from orchestrator.runtime.artifacts import TRANSCRIPTS_DIR
from orchestrator.runtime.workspace import Workspace

FORMAT = "orch-bundle/1"
MANIFEST = "bundle.json"
MAX_PATHS = 5000
MAX_EVENTS_PER_TYPE = 1000
MAX_TRANSCRIPT_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024
_SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


class BundleRefused(UsageError):
    """Raised when a bundle breaks a rule; names the part and the rule, and nothing of the
    bundle has been written."""


def export_bundle(ws: Workspace, base: str | None, out: Path, worker: str = "",
                  leave_out: Callable[[dict[str, bytes | None]], set[str]] | None = None
                  ) -> dict[str, Any]:
    """Write what the commits since base added to the log and to project/ as a bundle;
    leave_out names paths of those changes the bundle does not carry."""
    head = ws.repo.head()
    if head is None:
        raise UsageError("nothing to bundle: the branch has no commit yet")
    changes = ws.repo.changed_files(base, head) if base != head else {}
    refused = [p for p, data in changes.items() if data is None or not _bundled(p)]
    if refused:
        raise UsageError(f"the plan changed {refused[0]}; a bundle carries only new or "
                         f"changed events and files under project/ or {TRANSCRIPTS_DIR}/")
    left = leave_out(changes) if leave_out is not None else set()
    paths = sorted(p for p in changes if p not in left)
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; name a new folder for the bundle")
    tree = out / "tree"
    for path in paths:
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(changes[path] or b"")
    heads = _branch_heads(ws, {p: changes[p] for p in paths})
    for sha, files in heads.items():
        for path, data in files.items():
            target = out / "heads" / sha / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    manifest = {"format": FORMAT, "base": base, "head": head, "worker": worker,
                "paths": paths, "left_out": len(left),
                "heads": {sha: sorted(files) for sha, files in heads.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def events_of(changes: dict[str, bytes | None]) -> list[tuple[str, Event]]:
    """(path, event) of the event files among changed files (others, and broken ones, are
    not events)."""
    found = []
    for path, data in changes.items():
        if data is None or not path.startswith(f"{EVENTS_DIR}/"):
            continue
        ref = ref_from_path(path)
        parsed = parse_event(ref, data) if hasattr(ref, "rel_path") else None  # type: ignore[arg-type]
        if isinstance(parsed, tuple):
            found.append((path, parsed[0]))
    return found


def _branch_heads(ws: Workspace, changes: dict[str, bytes | None]) -> dict[str, dict[str, bytes]]:
    """The artifacts of each task branch commit a bundled `task.completed` names: commit ->
    path -> bytes, read from the commit (the plan clone has it; no one else does)."""
    heads: dict[str, dict[str, bytes]] = {}
    for _, e in events_of(changes):
        p = e.payload
        if not isinstance(p, TaskCompleted) or not p.branch or not p.head:
            continue
        wanted = set(p.artifacts)
        files = {path: data for path, data in ws.repo.read_tree_files(p.head, f"project/{e.project}")
                 if path in wanted}
        heads[p.head] = files
    return heads


def _bundled(path: str) -> bool:
    return path.startswith((f"{EVENTS_DIR}/", "project/", f"{TRANSCRIPTS_DIR}/"))


@dataclass
class Bundle:
    """A bundle as read and checked for format, paths, sizes and counts (not yet against the
    log): the commit it was planned from, its worker, its events by project, its files."""

    src: Path
    base: str | None = None
    worker: str = ""
    events: dict[str, list[Event]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    heads: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """The artifacts of each task branch commit its `task.completed` events name."""


def project_of(path: str) -> str:
    return path.split("/")[1] if path.startswith("project/") else path.split("/")[2]


def read_bundle(src: Path) -> Bundle:
    """Read a bundle, refusing it whole (BundleRefused) if any part breaks a rule of form."""
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
    base, worker = manifest.get("base"), manifest.get("worker", "")
    if base is not None and not (isinstance(base, str) and _SHA_RE.match(base)):
        raise BundleRefused(f"{MANIFEST}: 'base' is not a commit id")
    if not isinstance(worker, str) or len(worker) > 100:
        raise BundleRefused(f"{MANIFEST}: 'worker' is not a worker id")
    checked = Bundle(src=src, base=base, worker=worker)
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
    _read_heads(src, manifest.get("heads", {}), checked, total)
    return checked


def _read_heads(src: Path, heads: object, checked: Bundle, total: int) -> int:
    """Each task branch commit's files, under the rules of any file of the bundle, and only
    for a commit a `task.completed` of the bundle names, in that task's project."""
    if not isinstance(heads, dict):
        raise BundleRefused(f"{MANIFEST}: 'heads' is not a map of commit ids to paths")
    named = {e.payload.head: e.project for events in checked.events.values() for e in events
             if isinstance(e.payload, TaskCompleted) and e.payload.head}
    root = (src / "heads").resolve()
    for sha, paths in heads.items():
        if not (isinstance(sha, str) and _SHA_RE.match(sha)) or not isinstance(paths, list):
            raise BundleRefused(f"{MANIFEST}: 'heads' is not a map of commit ids to paths")
        if sha not in named:
            raise BundleRefused(f"bundle commit {sha}: no task.completed of the bundle names it")
        files: dict[str, bytes] = {}
        for path in paths:
            where = f"bundle file {path!r} of commit {sha[:12]}"
            if not isinstance(path, str):
                raise BundleRefused(f"{MANIFEST}: 'heads' is not a map of commit ids to paths")
            try:
                check_path(path)
            except GitError as exc:
                raise BundleRefused(f"{where}: {exc}") from None
            if not path.startswith(f"project/{named[sha]}/"):
                raise BundleRefused(f"{where}: outside project/{named[sha]}/, the project of "
                                    "the task that names the commit")
            _check_artifact(path)
            file = root / sha / path
            if file.is_symlink() or not file.is_file() or root not in file.resolve().parents:
                raise BundleRefused(f"{where}: missing from the bundle, or a link")
            size = file.stat().st_size
            if size > MAX_ARTIFACT_BYTES:
                raise BundleRefused(f"{where}: {size} bytes, over the limit of "
                                    f"{MAX_ARTIFACT_BYTES}")
            total += size
            if total > MAX_TOTAL_BYTES:
                raise BundleRefused(f"bundle: over {MAX_TOTAL_BYTES} bytes in all")
            files[path] = file.read_bytes()
        checked.heads[sha] = files
    return total


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
