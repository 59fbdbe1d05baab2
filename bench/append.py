"""Benchmark: appending events through the real EventLog, in process, fresh repo vs 100k events.

Usage: .venv/bin/python bench/append.py [--quick] [--rebuild] [--single N] [--batches N]
                                        [--workdir DIR] [--out FILE]

Two ways of writing, each in its own repository:
  single:  EventLog.append with one event per commit (default 500 commits);
  batched: EventLog.stage one event at a time, EventLog.commit every 100 (default 50 commits),
           as the engine does with a pass's events.
Each runs in a fresh repository (orch init, then the project's setup events) and in an
independent copy of bench/status.py's 100k-event repository (100 projects of 1,000 events;
cached under /tmp/orch-bench-status/100k, built if missing), where it goes on with the story
of an existing project (its state read once before the clock starts). The events come from
bench/_build.py's Story: mostly task events (assigned, started, completed, QA), with the
deploys, blocks and rounds between them. After each scenario: `git status --porcelain` must be
empty and a fresh read of the project must fold without findings. --quick: the 1k repository
instead of 100k and 50 single / 5 batched commits. Writes bench/results/append.json
(append-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _build import (  # noqa: E402
    LAYOUTS,
    RESULTS,
    Story,
    copy_repo,
    ensure_repo,
    load_note,
    machine,
    replay,
    set_git_identity,
)
from git_append import git  # noqa: E402

from orchestrator.adapters.event_reader import LogReader  # noqa: E402
from orchestrator.adapters.git import GitRepo  # noqa: E402
from orchestrator.runtime.workspace import Workspace  # noqa: E402

GOALS = {"single_events_per_s": 50.0, "batched_events_per_s": 500.0}
BATCH = 100
TASK_TYPES = ("task.", "qa.")


def prepare(path: Path, project: str) -> tuple[Workspace, Story, float]:
    """Open the workspace and bring the project's story to the end of its log on disk
    (a new project gets its setup events, created ... module.planned, in one commit)."""
    t0 = time.perf_counter()
    ws = Workspace.open(path)
    story = Story(project)
    if project in ws.reader.projects():
        replay(story, ws.reader.events(project))
    else:
        for _ in range(story.setup_events):
            story.record(ws.log.stage(project, [story.next()])[0])
        ws.log.commit()
    return ws, story, time.perf_counter() - t0


def run_scenario(path: Path, label: str, project: str, commits: int,
                 per_commit: int) -> dict[str, Any]:
    os.sync()  # the copies' dirty pages would otherwise be written back during the run
    ws, story, prepare_s = prepare(path, project)
    before = ws.reader.states([project])[project].events
    latencies: list[float] = []
    story_s = 0.0
    types: Counter[str] = Counter()
    t0 = time.perf_counter()
    for _ in range(commits):
        t = time.perf_counter()
        for _ in range(per_commit):
            s = time.perf_counter()
            new = story.next()
            story_s += time.perf_counter() - s
            types[new.type] += 1
            if per_commit == 1:
                event = ws.log.append(project, [new])[0]
            else:
                event = ws.log.stage(project, [new])[0]
            story.record(event)
        if per_commit > 1:
            ws.log.commit()
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    ws.repo.close()

    t = time.perf_counter()
    porcelain = git(path, "status", "--porcelain", "--untracked-files=all").stdout.decode()
    status_s = time.perf_counter() - t
    with GitRepo.open(path) as repo:  # a fresh read of the project from disk, no cache
        view = LogReader(path, repo, use_cache=False).views([project])[project]
    events = commits * per_commit
    log_s = elapsed - story_s
    task_events = sum(n for k, n in types.items() if k.startswith(TASK_TYPES))
    result = {
        "repo": label, "mode": "single" if per_commit == 1 else "batched",
        "project": project, "events_before": before, "commits": commits,
        "events_per_commit": per_commit, "events": events,
        "seconds": round(elapsed, 3), "story_seconds": round(story_s, 3),
        "events_per_s": round(events / log_s, 1), "commits_per_s": round(commits / log_s, 1),
        "events_per_s_incl_story": round(events / elapsed, 1),
        "commit_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "commit_p95_ms": round(sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)] * 1000,
                               2),
        "prepare_s": round(prepare_s, 3), "task_event_share": round(task_events / events, 3),
        "types": dict(types.most_common()),
        "git_status_porcelain": porcelain, "git_status_clean": porcelain == "",
        "git_status_s": round(status_s, 3),
        "events_after": view["events"], "findings_after": len(view["findings"]),
        "log_valid": not view["findings"] and view["events"] == before + events,
    }
    goal = GOALS["single_events_per_s" if per_commit == 1 else "batched_events_per_s"]
    result["goal_events_per_s"] = goal
    result["goal_met"] = result["events_per_s"] >= goal
    print(f"  {label:>5} {result['mode']:<7} | {commits:4d} commits x {per_commit:3d} | "
          f"{result['events_per_s']:8.1f} events/s {result['commits_per_s']:7.1f} commits/s | "
          f"p50 {result['commit_p50_ms']:7.2f} ms p95 {result['commit_p95_ms']:7.2f} ms | "
          f"goal >= {goal:.0f}: {'met' if result['goal_met'] else 'MISSED'}", flush=True)
    print(f"        git status --porcelain: {'(clean)' if not porcelain else porcelain[:500]} "
          f"[{status_s:.3f} s]; read back: {view['events']} events, "
          f"{len(view['findings'])} findings; prepare {prepare_s:.2f} s; story "
          f"{story_s:.2f} s; {task_events}/{events} task/qa events", flush=True)
    return result


def git_commits(path: Path, label: str, commits: int) -> dict[str, Any]:
    """git's own `git add` + `git commit` of one new file, in the same repository: the bar a
    correct layer is judged by (it writes the same index and the same objects)."""
    folder = path / ".orchestrator" / "events" / "git-itself"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(commits):
        name = folder / f"{i:08d}.yaml"
        name.write_text(f"seq: {i}\n")
        git(path, "add", str(name.relative_to(path)))
        git(path, "commit", "-q", "-m", f"git itself {i}")
    elapsed = time.perf_counter() - t0
    rate = round(commits / elapsed, 1)
    print(f"  {label:>5} git add + git commit | {commits:4d} commits | {rate:7.1f} commits/s",
          flush=True)
    return {"repo": label, "commits": commits, "seconds": round(elapsed, 3),
            "commits_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1k repository instead of 100k, fewer commits (< 60 s)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached repository")
    parser.add_argument("--single", type=int, default=100, help="commits of one event")
    parser.add_argument("--git", type=int, default=30,
                        help="commits of one file made by git itself (git add + git commit)")
    parser.add_argument("--batches", type=int, default=50, help=f"commits of {BATCH} events")
    parser.add_argument("--workdir", help="where the test repositories go (default: TMPDIR); "
                        "e.g. /dev/shm to tell the file system's cost from orch's")
    parser.add_argument("--out", help="results file (default: bench/results/append.json, "
                        "append-quick.json with --quick)")
    opts = parser.parse_args()
    set_git_identity()
    info = machine()
    print(f"{info['git']}; {info['cpus']} cpus; python {info['python']}; {info['date']}")
    single, batches = (50, 5) if opts.quick else (opts.single, opts.batches)
    size = "1k" if opts.quick else "100k"
    base, _ = ensure_repo(size, opts.rebuild)
    existing = LAYOUTS[size][0][0]

    scenarios: list[dict[str, Any]] = []
    git_itself: list[dict[str, Any]] = []
    copies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="orch-bench-append-", dir=opts.workdir) as tmp:
        work = Path(tmp)
        for n, (commits, per_commit) in enumerate(((single, 1), (batches, BATCH))):
            fresh = work / f"fresh-{n}"
            Workspace.init(fresh)[0].repo.close()
            scenarios.append(run_scenario(fresh, "fresh", "fresh", commits, per_commit))
            copy = work / f"{size}-{n}"
            copies.append(copy_repo(base, copy))
            scenarios.append(run_scenario(copy, size, existing, commits, per_commit))
            if per_commit == 1:
                git_itself.append(git_commits(fresh, "fresh", opts.git))
                git_itself.append(git_commits(copy, size, opts.git))

    print()
    print(f"{'repo':>5} | {'mode':<7} | {'events':>6} | {'events/s':>9} | {'commits/s':>9} | "
          f"{'p50 ms':>7} | {'p95 ms':>7} | status | goal")
    for r in sorted(scenarios, key=lambda r: (r["mode"] != "single", r["repo"] != "fresh")):
        print(f"{r['repo']:>5} | {r['mode']:<7} | {r['events']:>6} | {r['events_per_s']:>9.1f} | "
              f"{r['commits_per_s']:>9.1f} | {r['commit_p50_ms']:>7.2f} | "
              f"{r['commit_p95_ms']:>7.2f} | {'clean' if r['git_status_clean'] else 'DIRTY':<6} | "
              f">= {r['goal_events_per_s']:.0f}/s {'met' if r['goal_met'] else 'MISSED'}")
    for g in git_itself:
        ours = next(r for r in scenarios if r["repo"] == g["repo"] and r["mode"] == "single")
        g["orch_ratio"] = round(ours["commits_per_s"] / g["commits_per_s"], 2)
        print(f"{g['repo']:>5} | git add + git commit of one file: {g['commits_per_s']:.1f} "
              f"commits/s; orch's one-event commits: {ours['commits_per_s']:.1f}/s "
              f"(x{g['orch_ratio']} of git)")
    print(f"({size} repository copied with cp -a + index refresh in "
          f"{', '.join(f'{c:.1f}' for c in copies)} s; not timed)")

    report = {
        "benchmark": "EventLog append/stage+commit in process, wall clock",
        "quick": opts.quick, "machine": info, "goals": GOALS, "existing_repo_size": size,
        "workdir": str(Path(opts.workdir or tempfile.gettempdir()).resolve()),
        "index_updates": "index first, ref second, under index.lock, in every commit",
        "git_itself": git_itself,
        "copy_seconds": [round(c, 2) for c in copies], "scenarios": scenarios,
        "all_goals_met": all(r["goal_met"] for r in scenarios),
        "all_clean": all(r["git_status_clean"] and r["log_valid"] for r in scenarios),
    }
    print(load_note(info))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = Path(opts.out) if opts.out else RESULTS / (
        "append-quick.json" if opts.quick else "append.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
