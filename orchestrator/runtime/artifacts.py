"""The runtime's side of artifact safety: reading files for agents, and checking every path
an agent wants written against the real tree (symlinks) before anything is committed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from orchestrator.adapters.llm.transcripts import transcript_bytes
from orchestrator.agents.base import AgentFailure
from orchestrator.core.flow import Reaction
from orchestrator.core.paths import MAX_ARTIFACT_BYTES, PathRefused, confine, project_dir

TRANSCRIPTS_DIR = ".orchestrator/transcripts"
MAX_READ_BYTES = 1024 * 1024


class ArtifactGuard:
    def __init__(self, root: Path,
                 staged: Callable[[str], bytes | None] = lambda _: None) -> None:
        self.root = root
        self.staged = staged

    def read_text(self, rel_path: str) -> str | None:
        """A file for an agent to read (staged for the next commit, else in the tree); None
        if absent, reached through a link, or huge."""
        pending = self.staged(rel_path)
        if pending is not None:
            return pending.decode("utf-8", errors="replace")
        path = self.root / rel_path
        if self._through_symlink(rel_path) or not path.is_file():
            return None
        try:
            if path.stat().st_size > MAX_READ_BYTES:
                return None
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def check(self, project: str, files: Mapping[str, bytes]) -> dict[str, bytes]:
        """Every path confined to `project/<p>/`, through no symlink, within the size limit."""
        root = project_dir(project) + "/"
        checked: dict[str, bytes] = {}
        for path, data in files.items():
            try:
                confined = confine(project, "", path.removeprefix(root))
            except PathRefused as exc:
                raise AgentFailure("path_refused", str(exc)) from None
            if confined != path:
                raise AgentFailure("path_refused", f"path '{path}' is outside {root}")
            if self._through_symlink(path):
                raise AgentFailure("path_refused", f"path '{path}' goes through a symlink")
            if len(data) > MAX_ARTIFACT_BYTES:
                raise AgentFailure("invalid_output", f"{path} is over {MAX_ARTIFACT_BYTES} bytes")
            checked[path] = data
        return checked

    def _through_symlink(self, rel_path: str) -> bool:
        current = self.root
        for part in rel_path.split("/"):
            current = current / part
            if current.is_symlink():
                return True
            if not current.exists():
                return False
        return False


def transcript_files(project: str, reaction: Reaction,
                     transcripts: list[dict[str, Any]], tag: str = "") -> dict[str, bytes]:
    """Transcripts committed beside the events they produced, one file per call; `tag` keeps
    apart the files of a reaction's failed attempts."""
    files: dict[str, bytes] = {}
    for n, record in enumerate(transcripts, start=1):
        digest = str(record.get("prompt_hash") or hashlib.sha256(
            orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest())[:16]
        actor = reaction.actor.replace(".", "-")
        name = f"{reaction.causation_id}-{actor}-{tag + '-' if tag else ''}{n}-{digest}.json"
        files[f"{TRANSCRIPTS_DIR}/{project}/{name}"] = transcript_bytes(record)
    return files
