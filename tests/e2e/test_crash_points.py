"""Crash at each step of a reaction, then rerun: nothing lost, nothing twice, no hand repair.

One worker in a clone of a bare remote dispatches a small spec written here; every run but
the last is ended by the fault-injection seam (`ORCH_CRASH_AT=<point>:<n>`, see
orchestrator/adapters/crash_points.py: `os._exit(137)` at a named point, as kill -9 would),
each at another step: after the model answered, after the files were written, after the
branch moved, after the commit, in the middle of a push that lost a race, after the push.
Each crash run must reach its point (exit 137), so no step goes untested; the last run
finishes the project with no help.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import run_orch
from tests.support.remotes import clone_all, git, seeded_remote
from tests.support.sandbox import NO_CODE_CHECKS_YAML

SPEC = """\
# Plant log for a greenhouse

A small service that keeps track of the plants in one greenhouse.

## Functional requirements

- FR-1: The service lets a gardener add a plant with its name and bed.
- FR-2: The service lists the plants of a bed, newest first.
- FR-3: The service marks a plant as watered and shows when it last was.
"""
CONFIG = """\
parallelism: 2
max_decomposition_depth: 0
llm:
  provider: offline
""" + NO_CODE_CHECKS_YAML
CRASHES = ["after-model:2", "after-files:3", "after-ref:3", "after-commit:2",
           "during-push:1", "after-push:2"]


def dispatch(clone: Path, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ORCH_CRASH_AT"}
    if crash_at:
        env["ORCH_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "orchestrator", "dispatch", "--until-idle"],
                          cwd=clone, env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_a_crash_at_each_step_then_a_rerun_loses_nothing_and_does_nothing_twice(
        tmp_path: Path) -> None:
    remote, seed = seeded_remote(tmp_path, {"plants.md": SPEC}, CONFIG)
    (worker,) = clone_all(tmp_path, remote, ["worker"])

    for crash_at in CRASHES:
        if crash_at.startswith("during-push"):
            # The remote moves under the clone's unpushed work (a person pushed a note), so
            # the next push loses its race and the work is moved onto what came in.
            git(seed, "pull", "-q", "--ff-only")
            (seed / "NOTES.md").write_text("Water the ferns on Fridays.\n")
            git(seed, "add", "NOTES.md")
            git(seed, "commit", "-qm", "a person's note")
            git(seed, "push", "-q", "origin", "main")
            assert git(worker, "log", "--oneline", "origin/main..main")  # unpushed work
        run = dispatch(worker, crash_at)
        assert run.returncode == 137, f"{crash_at} was never reached:\n{run.stdout}{run.stderr}"
    final = dispatch(worker, None)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "Traceback" not in final.stderr

    assert git(worker, "status", "--porcelain") == ""  # no hand repair, nothing left over
    assert not (worker / ".git" / "index.lock").exists()
    assert git(worker, "rev-parse", "main") == git(worker, "rev-parse", "origin/main")
    git(seed, "pull", "-q", "--ff-only")  # what the remote holds is the whole story
    assert (seed / "NOTES.md").exists()
    run_orch(seed, "verify")  # exits 1 on any finding: a refused or duplicate event too
    [project] = json.loads(run_orch(seed, "status", "--json").stdout)["projects"]
    assert project["status"] == "completed" and not project["findings"]
    events = json.loads(run_orch(seed, "log", "--json").stdout)
    assert len({e["id"] for e in events}) == len(events)
    results = Counter((e["actor"], e["causation_id"], e["type"], json.dumps(e["payload"]))
                      for e in events if e["causation_id"])
    assert max(results.values()) == 1  # no reaction done twice
    first_claims = Counter((e["actor"], e["causation_id"]) for e in events
                           if e["type"] in ("reaction.claimed", "task.started")
                           and not e["payload"].get("takeover_of"))
    assert max(first_claims.values()) == 1  # a rerun resumes its claims, never claims again
    # Every task the PMs planned was completed and passed QA: nothing lost on the way.
    assert project["tasks"] and all(t["status"] == "passed" for t in project["tasks"])
