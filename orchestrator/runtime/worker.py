"""The clone's worker id: random, made once, kept in `.git/orch/worker`.

Never a host name or a path: a clone restarted under another host name is still the same
worker (it resumes its own claims), and two clones are never taken for one.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from orchestrator.adapters.cache import git_dir

_ID_RE = re.compile(r"^w-[0-9a-f]{16}$")


def worker_id(root: Path) -> str:
    path = git_dir(root) / "orch" / "worker"
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        text = ""
    if _ID_RE.match(text):
        return text
    new = f"w-{secrets.token_hex(8)}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".worker-{os.getpid()}")
    tmp.write_text(new + "\n", encoding="ascii")
    try:
        os.link(tmp, path)  # of two processes racing here the first wins, the other reads it
    except FileExistsError:
        if _ID_RE.match(path.read_text(encoding="ascii", errors="replace").strip()):
            tmp.unlink()
            return worker_id(root)
        os.replace(tmp, path)  # an unreadable id is replaced, not trusted
        return new
    tmp.unlink()
    return new
