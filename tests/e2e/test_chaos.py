"""Chaos: worker processes in clones of one bare remote dispatch several projects while a
loop kill -9s a random worker every few seconds and restarts it.

Every project completes; no event is lost or duplicated; no reaction is done twice; no
reaction is claimed twice except by a takeover after its lease ran out (a killed worker's
model call); every clone folds to the same state; `orch verify` is clean.

The suite runs a lean size (4 workers, 1 project, 12 s of kills). The judged size is
    ORCH_CHAOS_WORKERS=8 ORCH_CHAOS_PROJECTS=3 ORCH_CHAOS_SECONDS=20 pytest tests/e2e/test_chaos.py
and ORCH_CHAOS_SECONDS sets how long the killing goes on (default 12).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.conftest import run_orch
from tests.support.remotes import clone_all, git, seeded_remote
from tests.support.sandbox import NO_CODE_CHECKS_YAML

WORKERS = int(os.environ.get("ORCH_CHAOS_WORKERS", "4"))
PROJECTS = int(os.environ.get("ORCH_CHAOS_PROJECTS", "1"))
CHAOS_S = float(os.environ.get("ORCH_CHAOS_SECONDS", "12"))
CONFIG = """\
parallelism: 2
lease_s: 6
max_decomposition_depth: 0
llm:
  provider: offline
  offline:
    seed: {seed}
    qa_fail_rate: 0.2
    latency_ms: 100
"""


def spec(rng: random.Random, n: int) -> str:
    """A spec of this test's own: two areas of two or three requirements, drawn at random."""
    things = ["hive", "orchard", "boat", "kiln", "loom", "quarry", "mill", "forge"]
    areas = rng.sample(["Ledger", "Planner", "Inventory", "Alerts", "Portal"], 2)
    lines = [f"# {rng.choice(things).title()} keeper {n}", "", "## Functional requirements", ""]
    k = 1
    for area in areas:
        lines += [f"### {area}", ""]
        for _ in range(rng.randint(2, 3)):
            thing = rng.choice(things)
            lines.append(f"- FR-{k}: The {area.lower()} lets a keeper "
                         f"{rng.choice(['record', 'list', 'retire', 'count'])} {thing}s.")
            k += 1
        lines.append("")
    return "\n".join(lines)


def start(clone: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "dispatch", "--until-idle"],
                            cwd=clone, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def remote_statuses(observer: Path) -> dict[str, str]:
    git(observer, "fetch", "-q", "origin")
    views = json.loads(run_orch(observer, "status", "--json", "--at", "origin/main").stdout)
    return {v["id"]: v["status"] for v in views["projects"]}


def test_workers_killed_at_random_lose_nothing_and_do_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random()
    remote, seed = seeded_remote(tmp_path, {f"keeper-{n}.md": spec(rng, n)
                                            for n in range(PROJECTS)},
                                 CONFIG.format(seed=rng.randint(1, 999)) + NO_CODE_CHECKS_YAML)
    clones = clone_all(tmp_path, remote, [f"w{i}" for i in range(WORKERS)])

    procs = [start(c) for c in clones]
    kills = 0
    done = False
    try:
        end = time.monotonic() + CHAOS_S
        while time.monotonic() < end and not done:
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(WORKERS)
            if procs[victim].poll() is None:
                procs[victim].send_signal(signal.SIGKILL)
                kills += 1
            procs[victim].wait()
            procs[victim] = start(clones[victim])  # restarted in its own clone
            for i, p in enumerate(procs):  # a worker that went idle looks again
                if p.poll() is not None:
                    procs[i] = start(clones[i])
            statuses = remote_statuses(seed)
            done = len(statuses) == PROJECTS and all(s == "completed" for s in statuses.values())
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
    assert kills > 0
    # No more killing: the workers finish what is left, with no help.
    for _ in range(4):
        if done:
            break
        runs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "dispatch",
                                  "--until-idle", "--max-seconds", "120"], cwd=c,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for c in clones]
        for r in runs:
            _, err = r.communicate(timeout=300)
            assert "Traceback" not in err, err
        statuses = remote_statuses(seed)
        done = len(statuses) == PROJECTS and all(s == "completed" for s in statuses.values())
    assert done, statuses

    views = []
    for c in clones:
        # A worker killed after it committed and before it pushed holds work the others have
        # done since (or a lock of its own): restarted once more, it reconciles with the
        # remote, dropping what was done elsewhere, and leaves its clone at the remote's head.
        run_orch(c, "dispatch", "--until-idle", "--max-seconds", "120", timeout=300)
    for c in [seed, *clones]:
        git(c, "pull", "-q", "--ff-only")
        assert git(c, "status", "--porcelain") == ""
        run_orch(c, "verify")  # exits 1 on any finding: a duplicate or fenced result too
        views.append(json.loads(run_orch(c, "status", "--json").stdout)["projects"])
    for v in views:  # every clone folds to the same state (stale claims are clock-relative)
        for p in v:
            p.pop("stale_claims")
    assert all(v == views[0] for v in views)
    events = json.loads(run_orch(seed, "log", "--json").stdout)
    assert len({e["id"] for e in events}) == len(events)  # nothing twice in the log
    results = Counter((e["actor"], e["causation_id"], e["type"], json.dumps(e["payload"]))
                      for e in events if e["causation_id"] and e["type"] != "reaction.claimed")
    assert max(results.values()) == 1  # no reaction done twice
    first_claims = Counter((e["actor"], e["causation_id"]) for e in events
                           if e["type"] in ("reaction.claimed", "task.started")
                           and not e["payload"].get("takeover_of"))
    assert max(first_claims.values()) == 1
    # A second model call for one reaction happens only under a takeover of an expired lease,
    # and each takeover is on the record as a stale claim handed back.
    claims = {e["id"]: e for e in events if e["type"] in ("reaction.claimed", "task.started")}
    takeovers = [e for e in claims.values() if e["payload"].get("takeover_of")
                 and claims[e["payload"]["takeover_of"]]["payload"]["worker"]
                 != e["payload"]["worker"]]
    stale = {e["causation_id"] for e in events if e["type"] == "monitor.alert"
             and e["payload"]["kind"] == "stale_claim"}
    assert all(t["payload"]["takeover_of"] in stale for t in takeovers)
    for v in views[0]:
        assert v["tasks"] and all(t["status"] in ("passed", "rework_exhausted")
                                  for t in v["tasks"])
