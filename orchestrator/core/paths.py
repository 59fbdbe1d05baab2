"""Where agents may write: only under `project/<p>/`. Pure string rules; the runtime adds
the symlink check against the real tree before anything is written."""

from __future__ import annotations

import posixpath
import re

ARTIFACTS_ROOT = "project"
_FORBIDDEN_PARTS = {".git", ".github", ".orchestrator"}
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\- ]{0,99}$")
MAX_ARTIFACT_BYTES = 512 * 1024


class PathRefused(ValueError):
    """A path from a model that would land outside the project's folder."""


def project_dir(project: str) -> str:
    return f"{ARTIFACTS_ROOT}/{project}"


def confine(project: str, base: str, path: str) -> str:
    """`path` (relative to `base` inside the project's folder) as a repo-relative path, or
    PathRefused naming why: absolute, `..`, control characters, git or orch internals."""
    if not path or len(path) > 300:
        raise PathRefused(f"path '{path[:80]}' is empty or too long")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise PathRefused(f"path {path!r} holds a backslash or control character")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise PathRefused(f"path '{path}' is absolute")
    parts = path.split("/")
    if any(p in ("..", ".") for p in parts):
        raise PathRefused(f"path '{path}' walks out with '..' or '.'")
    for part in parts:
        if part.lower() in _FORBIDDEN_PARTS:
            raise PathRefused(f"path '{path}' reaches into {part}/")
        if not _SAFE_PART.match(part):
            raise PathRefused(f"path '{path}' has an unsafe name '{part[:40]}'")
    root = project_dir(project)
    full = posixpath.normpath(posixpath.join(root, base, path)) if base else posixpath.normpath(
        posixpath.join(root, path))
    if not full.startswith(root + "/"):
        raise PathRefused(f"path '{path}' lands outside {root}/")
    return full
