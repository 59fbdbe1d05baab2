"""A worker killed while it holds a claim: `orch status` names the stale claim once its lease
ran out, and the clone restarted (the worker id is in the clone, whatever the host is called)
resumes its own claim instead of claiming the reaction again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from tests.conftest import run_orch
from tests.support.remotes import git, seeded_remote

SPEC = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()
LEASE_S = 2
CONFIG = f"""\
lease_s: {LEASE_S}
llm:
  provider: offline
  offline:
    latency_ms: 4000
"""


def _claims_on_remote(clone: Path) -> list[str]:
    git(clone, "fetch", "-q", "origin")
    return [p for p in git(clone, "ls-tree", "-r", "--name-only", "origin/main").splitlines()
            if p.endswith(".reaction.claimed.yaml")]


def test_a_killed_workers_claim_shows_stale_and_its_restarted_clone_resumes_it(
        tmp_path: Path) -> None:
    remote, seed = seeded_remote(tmp_path, {"t.md": SPEC}, CONFIG)
    a, b = tmp_path / "a", tmp_path / "b"
    for c in (a, b):
        git(tmp_path, "clone", "-q", str(remote), str(c))

    worker = subprocess.Popen([sys.executable, "-m", "orchestrator", "dispatch", "--until-idle"],
                              cwd=a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "HOSTNAME": "first-host"})
    try:
        deadline = time.monotonic() + 60
        while not _claims_on_remote(b):  # the CTO's claim is pushed before its model call
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.2)
    finally:
        worker.kill()  # kill -9 in the middle of the CTO's 4 s call
        worker.wait()
    worker_id = (a / ".git" / "orch" / "worker").read_text().strip()

    git(b, "pull", "-q", "--ff-only")
    time.sleep(LEASE_S + 1.5)  # the lease runs out (claim times are whole seconds)
    [view] = json.loads(run_orch(b, "status", "--json").stdout)["projects"]
    [claim] = view["claims"]
    assert claim["worker"] == worker_id and claim["actor"] == "cto"
    assert view["stale_claims"] == [claim]
    text = run_orch(b, "status").stdout
    assert "stale claims" in text and worker_id in text

    # Restarted on a host of another name: the clone's worker id is the same, so it resumes
    # the claim it holds (renewing the lease it let run out) and lands the result under it.
    done = run_orch(a, "dispatch", "--max-seconds", "12", "--json", check=False, timeout=60,
                    env={"HOSTNAME": "second-host"})
    assert json.loads(done.stdout)["worker"] == worker_id, done.stderr
    git(b, "pull", "-q", "--ff-only")
    events = json.loads(run_orch(b, "log", view["id"], "--json").stdout)
    cto_claims = [e for e in events if e["type"] == "reaction.claimed" and e["actor"] == "cto"
                  and e["causation_id"] == claim["causation_id"]]
    # The claim status named (the first, or a renewal pushed before the kill) is among them.
    assert claim["claim"] in {c["id"] for c in cto_claims}
    assert all(e["payload"]["worker"] == worker_id for e in cto_claims)  # no one else's
    assert all(e["payload"]["takeover_of"] in ("", *[c["id"] for c in cto_claims])
               for e in cto_claims)  # renewals of its own, never a takeover
    [review] = [e for e in events if e["type"] == "spec.reviewed"]
    assert any(link["ref"] in {c["id"] for c in cto_claims} for link in review["links"])
    assert not [e for e in events if e["type"] == "monitor.alert"
                and e["payload"]["kind"] == "stale_claim"]
    run_orch(b, "verify")
