"""`orch dispatch` end to end: worker processes in clones of one bare remote share a project."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import run_orch
from tests.support.remotes import clone_all, git, seeded_remote

WORKERS = 4
CONFIG = """\
parallelism: 4
llm:
  provider: offline
  offline:
    seed: {seed}
    qa_fail_rate: 0.3
    blocker_rate: 0.2
    dependency_request_rate: 1.0
    latency_ms: 100
"""


def unseen_spec(rng: random.Random) -> str:
    """A spec no test has seen: its areas, nouns and requirements are drawn at random."""
    nouns = ["invoice", "shipment", "sensor", "booking", "recipe", "ticket", "course", "plot"]
    areas = rng.sample(["Backend", "Web", "Worker", "Reports", "Billing", "Search"],
                       rng.randint(2, 3))
    lines = [f"# {rng.choice(nouns).title()} desk for a {rng.choice(['farm', 'clinic', 'school'])}",
             "", "Author: Sam Okafor <sam@example.com>", "", "## Context", "",
             "A small service and the pieces around it.", "", "## Functional requirements", ""]
    n = 1
    for area in areas:
        lines += [f"### {area}", ""]
        for _ in range(rng.randint(2, 3)):
            noun = rng.choice(nouns)
            lines.append(f"- FR-{n}: The {area.lower()} part lets a user "
                         f"{rng.choice(['create', 'list', 'archive', 'export'])} {noun}s and "
                         f"shows each {noun}'s {rng.choice(['owner', 'status', 'total'])}.")
            n += 1
        lines.append("")
    lines += ["## Non-functional requirements", "",
              "- NFR-1: Every request answers within 300 ms on a laptop.", ""]
    return "\n".join(lines)


def test_four_workers_in_four_clones_complete_an_unseen_spec_once(tmp_path: Path) -> None:
    rng = random.Random()
    remote, seed = seeded_remote(tmp_path, {"unseen.md": unseen_spec(rng)},
                                 CONFIG.format(seed=rng.randint(1, 999)))
    clones = clone_all(tmp_path, remote, [f"w{i}" for i in range(WORKERS)])
    procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "dispatch", "--until-idle",
                               "--max-seconds", "400", "--json"], cwd=c,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in clones]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    assert len({r["worker"] for r in reports}) == WORKERS  # a worker id per clone
    assert sum(r["events"] for r in reports) > 0

    views = []
    for c in clones:
        git(c, "pull", "-q", "--ff-only")  # every clone folds what the remote holds
        run_orch(c, "verify")  # exits 1 on any finding: a duplicate or fenced result too
        views.append(json.loads(run_orch(c, "status", "--json").stdout)["projects"])
    assert all(v == views[0] for v in views)
    [project] = views[0]
    assert project["status"] == "completed"

    events = json.loads(run_orch(clones[0], "log", project["id"], "--json").stdout)
    reactions = Counter((e["actor"], e["causation_id"], e["type"], json.dumps(e["payload"]))
                        for e in events if e["causation_id"])
    assert max(reactions.values()) == 1  # no reaction done twice
    # Each reaction that called a model was claimed once: a claim that lost its race was
    # dropped before its model call and never pushed.
    claims = Counter((e["actor"], e["causation_id"]) for e in events
                     if e["type"] in ("reaction.claimed", "task.started"))
    assert claims and max(claims.values()) == 1

    # A branch per task, through the remote: each task merged is a merge commit of the
    # main branch whose second parent is the commit its task.merged names, the work's
    # commits are on the branches only, and no task branch is left on the remote.
    merged = {e["payload"]["head"] for e in events if e["type"] == "task.merged"}
    assert merged
    first_parent = git(remote, "log", "--first-parent", "--format=%H %P", "main").splitlines()
    second_parents = {line.split()[2] for line in first_parent if len(line.split()) == 3}
    assert merged <= second_parents
    assert git(remote, "for-each-ref", "refs/heads/orch/") == ""
