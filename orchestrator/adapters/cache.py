"""The local read cache: JSON files under the git directory, never committed, safe to delete."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

CACHE_VERSION = 5


def git_dir(root: Path) -> Path:
    """The repository's git directory (a worktree's `.git` file is followed)."""
    dot_git = root / ".git"
    if dot_git.is_file():
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            target = Path(text.partition(":")[2].strip())
            return target if target.is_absolute() else (root / target).resolve()
    return dot_git


def _plain(value: Any) -> Any:
    """What orjson does not write itself (it does dataclasses and enums): sets, sorted."""
    if isinstance(value, set | frozenset):
        return sorted(list(v) if isinstance(v, tuple) else v for v in value)
    raise TypeError(f"cannot cache a {type(value).__name__}")


class Cache:
    """Named JSON documents in `<git dir>/orch/cache/`; a broken or stale one reads as absent."""

    def __init__(self, root: Path) -> None:
        self.dir = git_dir(root) / "orch" / "cache"

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            data = orjson.loads((self.dir / name).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return None
        return data

    def write(self, name: str, data: dict[str, Any]) -> None:
        """Atomic replace; a cache that cannot be written is only a slower next read."""
        path = self.dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps({**data, "version": CACHE_VERSION}, default=_plain))
            os.replace(tmp, path)
        except OSError:
            return
