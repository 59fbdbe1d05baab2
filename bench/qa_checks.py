"""Benchmark: what one QA check costs, in bubblewrap and unconfined, for the simulated
Dev's Python (pytest, with and without the venv's plugins) and JavaScript (node --test).

Usage: .venv/bin/python bench/qa_checks.py [--runs N]

Prints the median wall time of N runs of each check and writes bench/results/qa_checks.json.
The sandbox's own cost is the difference between the two columns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.agents import outputs as out  # noqa: E402
from orchestrator.core.config import LanguageCheck, OfflineConfig, QaConfig  # noqa: E402
from orchestrator.core.provider import CallMeta, Facts, Message, RequirementFact  # noqa: E402
from orchestrator.core.verdict import plan_checks  # noqa: E402
from orchestrator.runtime.qa_run import CheckRunner  # noqa: E402
from orchestrator.sim.provider import OfflineProvider  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
REQ = RequirementFact("FR-1", "Growers register a seed tray (crop, bench) and edit it; a tray "
                              "is one of seedling, hardening or planted; trays are counted.")
FILES = ("src/trays.py", "tests/test_core_trays.py", "src/trays.js", "tests/trays.test.js")
NO_PLUGINS = LanguageCheck(detect=["**/test_*.py"], command=(
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 pytest -q -p no:cacheprovider {files}"))


def tree() -> dict[str, str]:
    facts = Facts(values={"project": "p", "squad": "core", "task": "core-1", "attempt": 1},
                  requirements=(REQ,), expected_files=FILES)
    dev = OfflineProvider(OfflineConfig()).complete(
        "dev", [Message("user", "")], out.DevOutput, CallMeta("p", "dev", "work", facts=facts)
    ).output
    return {f"core/{f.path}": f.content for f in dev.files}


def median_s(qa: QaConfig, files: dict[str, str], name: str, runs: int) -> float | None:
    checks = [c for c in plan_checks(qa, "core", [p.removeprefix("core/") for p in files])
              if c.name == name]
    runner = CheckRunner(qa)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        [outcome] = runner.run("p", files, checks)
        times.append(time.perf_counter() - start)
        if outcome.status != "passed":
            return None
    return round(statistics.median(times), 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files = tree()
    rows = []
    for label, name, languages in (("pytest", "python", {}),
                                   ("pytest, plugins off", "python", {"python": NO_PLUGINS}),
                                   ("node --test", "javascript", {})):
        row: dict[str, object] = {"check": label}
        for sandbox in ("bwrap", "none"):
            if sandbox == "bwrap" and shutil.which("bwrap") is None:
                row[sandbox] = None
                continue
            row[sandbox] = median_s(QaConfig(sandbox=sandbox, languages=languages), files, name,
                                    args.runs)
        rows.append(row)
        print(f"{label:22} bwrap {row['bwrap']}s  none {row['none']}s  (median of {args.runs})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "qa_checks.json").write_text(json.dumps({"runs": args.runs, "rows": rows},
                                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
