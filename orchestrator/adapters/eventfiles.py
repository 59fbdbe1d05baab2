"""Event files on disk: the layout, listing the files, and reading their bytes safely."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.ids import PROJECT_ID_RE
from orchestrator.core.state import Finding

EVENTS_DIR = ".orchestrator/events"
MAX_DOCUMENT_BYTES = 256 * 1024  # the YAML adapter refuses anything larger, too
FILE_NAME_RE = re.compile(r"^(\d{8})-([0-9A-HJKMNP-TV-Z]{26})\.([a-z][a-z0-9_.]*)\.yaml$")
SHARD_RE = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class FileRef:
    """One file found under a project's folder, with what its place in the tree says."""

    rel_path: str
    project: str
    shard: str
    name: str


def list_projects(root: Path) -> list[str]:
    """Folders under the events directory (valid project ids or not: bad ones are findings)."""
    base = root / EVENTS_DIR
    try:
        return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def stray_files(root: Path) -> list[Finding]:
    """Files directly under the events directory or under a bad project name."""
    base = root / EVENTS_DIR
    findings: list[Finding] = []
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return []
    for entry in sorted(entries, key=lambda e: e.name):
        rel = f"{EVENTS_DIR}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            if not PROJECT_ID_RE.match(entry.name):
                findings.append(Finding(reason="folder name is not a valid project id", path=rel))
        elif entry.name not in (".gitkeep", ".gitattributes"):
            findings.append(Finding(reason="file outside any project folder", path=rel))
    return findings


def iter_project_files(root: Path, project: str) -> Iterator[FileRef | Finding]:
    """Every file of a project, in name order; misplaced files come out as findings."""
    pdir = root / EVENTS_DIR / project
    try:
        shards = sorted(os.listdir(pdir))
    except (FileNotFoundError, NotADirectoryError):
        return  # staged by this process and not written yet, or removed meanwhile
    for shard in shards:
        spath = pdir / shard
        rel_shard = f"{EVENTS_DIR}/{project}/{shard}"
        if not spath.is_dir() or spath.is_symlink():
            yield Finding(reason="file outside any shard folder", path=rel_shard)
            continue
        if not SHARD_RE.match(shard):
            yield Finding(reason="shard folder name is not 4 digits", path=rel_shard)
            continue
        for name in sorted(os.listdir(spath)):
            rel = f"{rel_shard}/{name}"
            if not FILE_NAME_RE.match(name):
                yield Finding(reason="file name is not <seq>-<ulid>.<type>.yaml", path=rel)
                continue
            yield FileRef(rel_path=rel, project=project, shard=shard, name=name)


def ref_from_path(rel_path: str) -> FileRef | Finding:
    """A FileRef from a repository-relative path (as read from a git tree)."""
    parts = rel_path.split("/")
    prefix = EVENTS_DIR.split("/")
    if parts[: len(prefix)] != prefix or len(parts) != len(prefix) + 3:
        return Finding(reason="file outside any project shard folder", path=rel_path)
    project, shard, name = parts[len(prefix):]
    if not PROJECT_ID_RE.match(project):
        return Finding(reason="folder name is not a valid project id", path=rel_path)
    if not SHARD_RE.match(shard):
        return Finding(reason="shard folder name is not 4 digits", path=rel_path)
    if not FILE_NAME_RE.match(name):
        return Finding(reason="file name is not <seq>-<ulid>.<type>.yaml", path=rel_path)
    return FileRef(rel_path=rel_path, project=project, shard=shard, name=name)


def read_file_bytes(root: Path, ref: FileRef) -> bytes | Finding:
    """A file's bytes, refusing symlinks and anything over the size limit before reading it."""
    path = root / ref.rel_path
    try:
        st = path.lstat()
        if not path.is_file() or path.is_symlink():
            return Finding(reason="not a regular file", path=ref.rel_path)
        if st.st_size > MAX_DOCUMENT_BYTES:
            return Finding(
                reason=f"file is {st.st_size} bytes, over the {MAX_DOCUMENT_BYTES} limit",
                path=ref.rel_path)
        with open(path, "rb") as fh:
            return fh.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        return Finding(reason=f"cannot read: {exc.strerror}", path=ref.rel_path)
