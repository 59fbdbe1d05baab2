"""Benchmark: what a branch per task costs in git: cutting a branch, committing a Dev's files
on it (not checked out), checking the merge in memory, and the merge commit itself, on a
small repository and on one with 10k files on the main branch.

Usage: .venv/bin/python bench/task_branches.py [--tasks N] [--big-files N]
Writes bench/results/task_branches.json and prints the medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.runtime.workspace import Workspace  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "task_branches.json"


def _fill(root: Path, files: int) -> None:
    """`files` committed files under project/bulk/, through git fast-import (fast)."""
    if not files:
        return
    lines = ["commit refs/heads/main", "committer b <b@b> 0 +0000", "data 4", "bulk",
             "from refs/heads/main^0"]
    for i in range(files):
        body = f"file {i}\n"
        lines += [f"M 100644 inline project/bulk/{i // 1000:03d}/f{i}.txt",
                  f"data {len(body)}", body.rstrip("\n")]
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, check=True,
                   input=("\n".join(lines) + "\n").encode())
    subprocess.run(["git", "reset", "-q", "--hard", "main"], cwd=root, check=True)


def measure(tasks: int, bulk: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orch-bench-branches-") as tmp:
        ws, _ = Workspace.init(Path(tmp))
        _fill(ws.root, bulk)
        timings: dict[str, list[float]] = {"cut": [], "commit": [], "check_merge": [],
                                           "merge": []}
        heads = []
        for i in range(tasks):
            name = f"orch/p/t{i}"
            start = ws.repo.head() or ""
            t0 = time.perf_counter()
            ws.repo.branches.cut(name, start)
            t1 = time.perf_counter()
            files = {f"project/p/api/t{i}/mod{j}.py": f"X = {i * 10 + j}\n".encode()
                     for j in range(4)}
            heads.append(ws.repo.branches.commit(name, files, f"t{i}\n", start=start))
            t2 = time.perf_counter()
            timings["cut"].append(t1 - t0)
            timings["commit"].append(t2 - t1)
        for i, head in enumerate(heads):
            t0 = time.perf_counter()
            check = ws.repo.branches.check_merge(ws.repo.head() or "", head)
            t1 = time.perf_counter()
            assert check.clean
            ws.repo.branches.merge_into_current(head, {f".orchestrator/m{i}.yaml": b"m: 1\n"},
                                                f"merge t{i}\n")
            t2 = time.perf_counter()
            timings["check_merge"].append(t1 - t0)
            timings["merge"].append(t2 - t1)
        return {k: round(statistics.median(v) * 1000, 1) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--big-files", type=int, default=10_000)
    args = parser.parse_args()
    results = {"machine": platform.platform(), "tasks": args.tasks,
               "median_ms": {"small": measure(args.tasks, 0),
                             f"{args.big_files}_files": measure(args.tasks, args.big_files)}}
    for repo, figures in results["median_ms"].items():
        print(f"{repo:>12}: " + ", ".join(f"{k} {v} ms" for k, v in figures.items()))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
