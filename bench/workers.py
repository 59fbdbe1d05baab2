"""Workers: how tasks per second grow with worker processes sharing one bare remote.

For 1, 2, 4 and 8 workers, each in its own clone of one bare remote, runs `orch dispatch
--until-idle` on `--projects` copies of the example spec with the offline provider at
`latency_ms` per call, and prints tasks completed per second, the push retries the workers
needed, how the reactions spread over the workers and the scaling ratio against one worker.
Then measures the raw ceiling of the remote on this machine: 8 clones racing one-event pushes
through the same compare-and-swap for `--ceiling-s` seconds.

A worker is a unit of capacity (a runner, a laptop): `--parallelism` model calls at once. The
work must be wider than one worker for more workers to help, so several projects run at once
(one project of the example spec is at most ~8 tasks wide). QA's language checks (pytest in
the sandbox) are off by default: they cost CPU, not model latency, and on a machine of 2 cores
they measure the cores, not the coordination (`--qa-checks` turns them on).

    python bench/workers.py [--latency-ms 200] [--workers 1,2,4,8] [--projects 4]
                            [--parallelism 2] [--ceiling-s 10] [--qa-checks]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results" / "workers.json"
CONFIG = """\
parallelism: {parallelism}
llm:
  provider: offline
  offline:
    seed: 7
    latency_ms: {latency}
"""
NO_CHECKS = """\
qa:
  languages:
    python: null
    javascript: null
"""
RACER = """\
import sys, time
from pathlib import Path
from orchestrator.core import events as ev
from orchestrator.runtime.sync import publish
from orchestrator.runtime.workspace import Workspace
ws = Workspace.open(Path(sys.argv[1])); end = time.monotonic() + float(sys.argv[2])
ok = lost = 0
while time.monotonic() < end:
    ws.log.stage("race", [ev.NewEvent(payload=ev.MonitorAlert(kind="other", message="x"),
                                      actor="monitor")])
    r = publish(ws, "origin", attempts=1000, base_delay_s=0.02)
    ok += 1; lost += r.rejections
print(ok, lost)
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def orch(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0:  # say what orch said, not only that it failed
        raise SystemExit(f"orch {' '.join(args)} in {cwd} exited {done.returncode}: "
                         f"{done.stderr.strip() or done.stdout.strip()[-500:]}")
    return done


def remote_with(tmp: Path, files: dict[str, str]) -> Path:
    remote = tmp / "remote.git"
    git(tmp, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = tmp / "seed"
    git(tmp, "clone", "-q", str(remote), str(seed))
    orch(seed, "init")
    for path, text in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "--allow-empty", "-m", "bench seed")
    git(seed, "push", "-q", "origin", "main")
    return remote


def run_workers(n: int, latency_ms: int, projects: int, parallelism: int,
                qa_checks: bool) -> dict[str, Any]:
    spec = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()
    config = CONFIG.format(latency=latency_ms, parallelism=parallelism) + (
        "" if qa_checks else NO_CHECKS)
    files = {f"specs/tracker-{i + 1}.md": spec for i in range(projects)}
    with tempfile.TemporaryDirectory(prefix="orch-workers-") as d:
        tmp = Path(d)
        remote = remote_with(tmp, {**files, ".orchestrator/config.yaml": config})
        clones = [tmp / f"w{i}" for i in range(n)]
        for c in clones:
            git(tmp, "clone", "-q", str(remote), str(c))
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs = [subprocess.Popen([sys.executable, "-m", "orchestrator", "dispatch",
                                   "--until-idle", "--json"], cwd=c, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for c in clones]
        reports = []
        for p in procs:
            out, err = p.communicate()
            if p.returncode != 0:
                for other in procs:
                    other.kill()
                    other.wait()
                raise SystemExit(f"a worker failed: {err.strip().splitlines()[-1:]}")
            reports.append(json.loads(out))
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # The workers' CPU and their git commands' (the remote's side too: a local remote's
        # receive-pack and upload-pack are children of the workers' git).
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        git(clones[0], "pull", "-q", "--ff-only")
        states = json.loads(orch(clones[0], "status", "--json").stdout)["projects"]
        events = json.loads(orch(clones[0], "log", "--json").stdout)
        tasks = sum(1 for e in events if e["type"] == "task.completed")
        claims: dict[str, int] = {}
        for e in events:
            if e["type"] in ("reaction.claimed", "task.started"):
                worker = e["payload"].get("worker", "")
                claims[worker] = claims.get(worker, 0) + 1
        return {"workers": n, "projects": len(states), "parallelism": parallelism,
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 1),
                "cpu_share": round(cpu / (wall * (os.cpu_count() or 1)), 2),
                "tasks_completed": tasks,
                "tasks_per_s": round(tasks / wall, 3),
                "status": sorted({s["status"] for s in states}),
                "pushes": sum(r["pushes"] for r in reports),
                "push_retries": sum(r["rejections"] for r in reports),
                "contended_publishes": sum(r.get("contended", 0) for r in reports),
                "dropped": sum(len(r["dropped"]) for r in reports),
                "claims_per_worker": sorted(claims.values(), reverse=True)}


def ceiling(racers: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orch-ceiling-") as d:
        tmp = Path(d)
        remote = remote_with(tmp, {})
        seed = tmp / "seed"
        orch_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        subprocess.run([sys.executable, "-c",
                        "from pathlib import Path; from orchestrator.core import events as ev;"
                        "from orchestrator.runtime.workspace import Workspace;"
                        f"ws = Workspace.open(Path({str(seed)!r}));"
                        "ws.log.append('race', [ev.NewEvent(payload=ev.ProjectCreated("
                        "title='race'), actor='system')])"], check=True, env=orch_env)
        git(seed, "push", "-q", "origin", "main")
        clones = [tmp / f"r{i}" for i in range(racers)]
        for c in clones:
            git(tmp, "clone", "-q", str(remote), str(c))
        procs = [subprocess.Popen([sys.executable, "-c", RACER, str(c), str(seconds)],
                                  stdout=subprocess.PIPE, text=True, env=orch_env)
                 for c in clones]
        ok = lost = 0
        for p in procs:
            a, b = p.communicate()[0].split()
            ok, lost = ok + int(a), lost + int(b)
        return {"racers": racers, "seconds": seconds, "pushes_per_s": round(ok / seconds, 2),
                "rejections_per_success": round(lost / max(ok, 1), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--projects", type=int, default=4)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--ceiling-s", type=float, default=10.0)
    parser.add_argument("--qa-checks", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    rows = []
    for n in (int(x) for x in args.workers.split(",")):
        row = run_workers(n, args.latency_ms, args.projects, args.parallelism, args.qa_checks)
        row["scaling"] = round(row["tasks_per_s"] / rows[0]["tasks_per_s"], 2) if rows else 1.0
        rows.append(row)
        print(f"{n} worker(s): {row['tasks_completed']} tasks in {row['wall_s']} s = "
              f"{row['tasks_per_s']} tasks/s, {row['push_retries']} push retries, "
              f"x{row['scaling']} of one worker ({', '.join(row['status'])}); claims per "
              f"worker {row['claims_per_worker']}; {row['cpu_s']} cpu-s "
              f"({row['cpu_share']:.0%} of the machine)", flush=True)
    cores = os.cpu_count() or 1
    # However the work is spread, the machine runs at most `cores` cpu-s a second: with the
    # cpu one worker spent, no number of workers here finishes faster than cpu_1 / cores.
    bound = round(rows[0]["wall_s"] / max(rows[0]["cpu_s"] / cores, 1e-9), 2)
    print(f"cpu bound: one worker's run took {rows[0]['cpu_s']} cpu-s; on {cores} cores no "
          f"number of workers can do better than x{bound} of one worker here")
    raw = ceiling(8, args.ceiling_s)
    print(f"remote ceiling: {raw['pushes_per_s']} successful one-event pushes/s from 8 racing "
          f"clones, {raw['rejections_per_success']} rejections per success")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                   "load_before": load, "load_after": os.getloadavg(),
                                   "latency_ms": args.latency_ms, "qa_checks": args.qa_checks,
                                   "runs": rows, "cpu_bound_scaling": bound,
                                   "ceiling": raw}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
