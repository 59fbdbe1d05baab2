"""Benchmark: what `orch github sync` costs against a local GitHub server (githubkit, the real
client): HTTP requests and wall time of the first sync (opening a draft pull request and
posting QA's comment per task), of a quiet sync (nothing new), and of a sync that records a
change request on every pull request.

Usage: .venv/bin/python bench/github_sync.py [--tasks 5,20]

Prints one line per size and writes bench/results/github_sync.json. A webhook sync (one pull
request, --event-path) costs the quiet sync's requests for that one pull request only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.adapters.config_file import load_config  # noqa: E402
from orchestrator.adapters.github import GitHubHost  # noqa: E402
from orchestrator.runtime.github_review import sync  # noqa: E402
from orchestrator.runtime.workspace import Workspace  # noqa: E402
from tests.support.fake_github import FakeGitHub  # noqa: E402
from tests.support.review_log import build_in_review  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def measure(n: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(owner="acme", repo="shop") as gh:
        root = Path(tmp) / "repo"
        build_in_review(root, [f"t{i}" for i in range(1, n + 1)], cap=n)
        gh.add_user("alice", permission="write")
        out: dict[str, float | int] = {"tasks": n}
        for phase in ("first", "quiet", "rework"):
            if phase == "rework":
                for number in gh.pulls:
                    gh.submit_review(number, "alice", "CHANGES_REQUESTED", "again",
                                     comments=[("a.py", 1, "x"), ("b.py", 2, "y")])
            before = len(gh.requests)
            started = time.perf_counter()
            sync(Workspace.open(root), GitHubHost("acme/shop", gh.token, gh.base_url),
                 load_config(root))
            out[f"{phase}_s"] = round(time.perf_counter() - started, 3)
            out[f"{phase}_requests"] = len(gh.requests) - before
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="5,20")
    sizes = [int(s) for s in parser.parse_args().tasks.split(",")]
    rows = [measure(n) for n in sizes]
    for r in rows:
        print(f"{r['tasks']:>4} tasks: first sync {r['first_s']:.2f} s / {r['first_requests']} "
              f"requests; quiet {r['quiet_s']:.2f} s / {r['quiet_requests']}; "
              f"{r['tasks']} change requests {r['rework_s']:.2f} s / {r['rework_requests']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "github_sync.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
