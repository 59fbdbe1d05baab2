"""One bare remote and clones of it, as the many-workers tests set them up."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.conftest import run_orch


def git(cwd: Path, *args: str) -> str:
    """A git command that must succeed; its stderr is in the failure."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)} in {cwd.name}: {proc.stderr}"
    return proc.stdout


def seeded_remote(root: Path, specs: Mapping[str, str], config: str) -> tuple[Path, Path]:
    """A bare remote (`root/remote.git`) holding an `orch init` repository with these specs
    (name -> text, under specs/) and config, pushed from the clone `root/seed`."""
    remote = root / "remote.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = root / "seed"
    git(root, "clone", "-q", str(remote), str(seed))
    run_orch(seed, "init")
    for name, text in specs.items():
        (seed / "specs" / name).write_text(text)
    (seed / ".orchestrator" / "config.yaml").write_text(config)
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "specs")
    git(seed, "push", "-q", "origin", "main")
    return remote, seed


def clone_all(root: Path, remote: Path, names: list[str]) -> list[Path]:
    """Clones of the remote under root, one per name."""
    made = [root / name for name in names]
    for clone in made:
        git(root, "clone", "-q", str(remote), str(clone))
    return made
