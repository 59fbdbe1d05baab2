"""Benchmark: `orch status --json` as a whole process on logs of 1k, 10k and 100k events.

Usage: .venv/bin/python bench/status.py [--quick] [--rebuild] [--runs N] [--runs-100k N]
                                        [--sizes 1k,10k,100k] [--profile]

For each size, a repository holding a realistic, fold-valid log (bench/_build.py; cached
under /tmp/orch-bench-status/<size>) and four wall-clock figures, median of N runs each:
floor (a Python process that only lists and reads every event file), `orch status --json`
cold (`.git/orch/cache` deleted before each run), warm (cache present), and the startup of
`python -c "import orchestrator.cli"`. Also checks that cold and warm print the same JSON and
that the log folds without findings. Writes bench/results/status.json (status-quick.json
with --quick); --profile adds -X importtime and cProfile of a warm run at the largest size.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _build import (  # noqa: E402
    LAYOUTS,
    RESULTS,
    ensure_repo,
    load_note,
    machine,
    set_git_identity,
)

PYTHON = sys.executable
ORCH = str(Path(sys.executable).parent / "orch")
GOALS = {"warm_100k_s": 0.5, "cold_100k_s": 15.0}

FLOOR = """\
import os, sys
def walk(path):
    files = size = 0
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            f, s = walk(entry.path)
            files, size = files + f, size + s
        else:
            with open(entry.path, "rb") as fh:
                size += len(fh.read())
            files += 1
    return files, size
print(*walk(sys.argv[1] + "/.orchestrator/events"))
"""


def timed(cmd: list[str], cwd: Path) -> tuple[float, bytes]:
    """Wall-clock seconds of one whole process, and what it printed (it must succeed)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                         f"{proc.stderr.decode()[-2000:]}")
    return took, proc.stdout


def series(cmd: list[str], cwd: Path, runs: int, cold: bool = False) -> tuple[dict, bytes]:
    times: list[float] = []
    out = b""
    for _ in range(runs):
        if cold:
            shutil.rmtree(cwd / ".git" / "orch" / "cache", ignore_errors=True)
        took, out = timed(cmd, cwd)
        times.append(took)
    return summary(times), out


def summary(times: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "runs_s": [round(t, 4) for t in times]}


def _fig(figure: dict[str, Any]) -> str:
    return f"{figure['median_s']:7.3f}s ({figure['min_s']:6.3f})"


def check_log(out: bytes, expected_events: int) -> dict[str, Any]:
    """What the status JSON says about the log: events, projects, findings (must be none)."""
    data = json.loads(out)
    projects = data["projects"]
    findings = len(data["findings"]) + sum(len(p["findings"]) for p in projects)
    statuses: dict[str, int] = {}
    for p in projects:
        statuses[p["status"]] = statuses.get(p["status"], 0) + 1
    events = sum(p["events"] for p in projects)
    return {"events_folded": events, "projects": len(projects), "findings": findings,
            "tasks": sum(len(p["tasks"]) for p in projects), "project_statuses": statuses,
            "valid": findings == 0 and events == expected_events, "json_bytes": len(out)}


def bench_size(size: str, runs: int, rebuild: bool) -> dict[str, Any]:
    repo, build_s = ensure_repo(size, rebuild)
    events = sum(n for _, n in LAYOUTS[size])
    print(f"[{size}] {events} events in {len(LAYOUTS[size])} project(s), {runs} runs each",
          flush=True)
    floor, floor_out = series([PYTHON, "-c", FLOOR, str(repo)], repo, runs)
    files, raw_bytes = (int(x) for x in floor_out.split())
    print(f"  floor  {floor['median_s']:8.3f} s  ({files} files, {raw_bytes / 1e6:.1f} MB)",
          flush=True)
    cold, cold_out = series([ORCH, "status", "--json"], repo, runs, cold=True)
    print(f"  cold   {cold['median_s']:8.3f} s", flush=True)
    timed([ORCH, "status", "--json"], repo)  # cache present from here on
    warm, warm_out = series([ORCH, "status", "--json"], repo, runs)
    print(f"  warm   {warm['median_s']:8.3f} s", flush=True)
    log = check_log(cold_out, events)
    same = cold_out == warm_out
    print(f"  cold == warm JSON: {'yes' if same else 'NO'}; log valid: "
          f"{'yes' if log['valid'] else 'NO'} ({log['events_folded']} events folded, "
          f"{log['tasks']} tasks, {log['findings']} findings, statuses {log['project_statuses']})",
          flush=True)
    return {"events": events, "projects": len(LAYOUTS[size]), "repo": str(repo),
            "build_s": None if build_s is None else round(build_s, 1), "runs": runs,
            "event_files": files, "event_bytes": raw_bytes, "floor": floor, "cold": cold,
            "warm": warm, "cold_equals_warm": same, "log": log}


def profile(size: str) -> dict[str, Any]:
    """Where a warm `orch status --json` spends its time: imports and cProfile's top entries."""
    repo, _ = ensure_repo(size)
    timed([ORCH, "status", "--json"], repo)  # warm the cache
    proc = subprocess.run([PYTHON, "-X", "importtime", "-m", "orchestrator", "status", "--json"],
                          cwd=repo, capture_output=True, text=True, check=True)
    imports = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            imports.append((int(parts[1]), parts[2].rstrip()))
    top_level = sorted((i for i in imports if not i[1].startswith("   ")), reverse=True)[:15]
    stats_file = RESULTS / f"status-{size}-warm.prof"
    subprocess.run([PYTHON, "-m", "cProfile", "-o", str(stats_file), "-m", "orchestrator",
                    "status", "--json"], cwd=repo, capture_output=True, check=True)
    text = {}
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(str(stats_file), stream=buf).sort_stats(key).print_stats(25)
        text[key] = buf.getvalue()
    print(f"\n--- profile: warm `orch status --json` at {size} ---")
    print("top-level imports (cumulative us):")
    for us, name in top_level:
        print(f"  {us / 1000:8.1f} ms  {name.strip()}")
    print(text["cumulative"])
    print(text["tottime"])
    report = RESULTS / f"status-{size}-warm-profile.txt"
    report.write_text(proc.stderr + "\n" + text["cumulative"] + "\n" + text["tottime"])
    print(f"wrote {report} and {stats_file}")
    return {"top_level_imports_ms": [(round(us / 1000, 1), n.strip()) for us, n in top_level],
            "report": str(report)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k only, 3 runs (< 60 s)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached repositories")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure at 1k and 10k")
    parser.add_argument("--runs-100k", type=int, default=3, help="runs per figure at 100k")
    parser.add_argument("--sizes", default="1k,10k,100k", help="comma-separated sizes")
    parser.add_argument("--profile", action="store_true",
                        help="also profile a warm run at the largest size")
    opts = parser.parse_args()
    set_git_identity()
    sizes = ["1k"] if opts.quick else [s.strip() for s in opts.sizes.split(",")]
    for size in sizes:
        if size not in LAYOUTS:
            raise SystemExit(f"unknown size {size}; choose from {', '.join(LAYOUTS)}")
    info = machine()
    print(f"{info['git']}; {info['cpus']} cpus; python {info['python']}; {info['date']}")

    runs_small = 3 if opts.quick else opts.runs
    importing, _ = series([PYTHON, "-c", "import orchestrator.cli"], Path.cwd(), runs_small * 2)
    bare, _ = series([PYTHON, "-c", "pass"], Path.cwd(), runs_small * 2)
    print(f"startup: python -c pass {bare['median_s']:.3f} s; "
          f"import orchestrator.cli {importing['median_s']:.3f} s", flush=True)

    results: dict[str, Any] = {}
    for size in sizes:
        runs = opts.runs_100k if size == "100k" else runs_small
        results[size] = bench_size(size, runs, opts.rebuild)

    print()
    print("median of the runs (min in brackets)")
    print(f"{'size':>5} | {'events':>7} | {'floor':>17} | {'cold':>17} | {'warm':>17} | "
          f"{'cold/ev':>8} | same JSON | valid | goal")
    for size, r in results.items():
        goal = ""
        if size == "100k":
            ok_w = r["warm"]["median_s"] < GOALS["warm_100k_s"]
            ok_c = r["cold"]["median_s"] < GOALS["cold_100k_s"]
            goal = (f"warm < {GOALS['warm_100k_s']} s: {'met' if ok_w else 'MISSED'}; "
                    f"cold < {GOALS['cold_100k_s']:.0f} s: {'met' if ok_c else 'MISSED'}")
        print(f"{size:>5} | {r['events']:>7} | {_fig(r['floor'])} | {_fig(r['cold'])} | "
              f"{_fig(r['warm'])} | "
              f"{r['cold']['median_s'] / r['events'] * 1e6:6.0f}us | "
              f"{'yes' if r['cold_equals_warm'] else 'NO':>9} | "
              f"{'yes' if r['log']['valid'] else 'NO':>5} | {goal}")
    print(f"startup (context): python -c pass {bare['median_s']:.3f} s, "
          f"import orchestrator.cli {importing['median_s']:.3f} s")

    report: dict[str, Any] = {
        "benchmark": "orch status --json, whole process, wall clock, median of runs",
        "quick": opts.quick, "machine": info, "goals": GOALS,
        "startup": {"python_pass": bare, "import_orchestrator_cli": importing},
        "sizes": results,
    }
    if "100k" in results:
        report["goals_met"] = {
            "warm_100k": results["100k"]["warm"]["median_s"] < GOALS["warm_100k_s"],
            "cold_100k": results["100k"]["cold"]["median_s"] < GOALS["cold_100k_s"]}
    if opts.profile:
        report["profile"] = profile(sizes[-1])
    print(load_note(info))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("status-quick.json" if opts.quick else "status.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
