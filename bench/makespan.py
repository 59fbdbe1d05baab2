"""Makespan: does independent work really run in parallel, and how much does orchestration cost?

Runs the example spec with the offline provider at `latency_ms` per call and a wide backlog,
and compares the run's wall time with the critical-path bound: the same flow simulated with
unlimited parallelism and zero overhead on a virtual clock, where every provider call takes
exactly the latency. The bound is the longest chain of provider calls times the latency.

    python bench/makespan.py [--latency-ms 200] [--tasks-per-requirement 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.agents.base import AgentContext  # noqa: E402
from orchestrator.agents.team import perform  # noqa: E402
from orchestrator.core import events as ev  # noqa: E402
from orchestrator.core.config import Config  # noqa: E402
from orchestrator.core.flow import FlowSettings, pending_reactions  # noqa: E402
from orchestrator.core.fold import apply_event  # noqa: E402
from orchestrator.core.state import ProjectState  # noqa: E402
from orchestrator.runtime.prompts import load_prompt  # noqa: E402
from orchestrator.sim.provider import OfflineProvider  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "makespan.json"


def bench_config(latency_ms: int, tasks_per_requirement: int) -> dict[str, Any]:
    return {
        "max_review_rounds": 3, "max_qa_rework": 2, "max_decomposition_depth": 1,
        "parallelism": 64, "loop_guard": 5000,
        "llm": {"provider": "offline", "offline": {
            "seed": 7, "qa_fail_rate": 0.2, "blocker_rate": 0.0,
            "dependency_request_rate": 0.0, "latency_ms": latency_ms,
            "tasks_per_requirement": tasks_per_requirement}},
    }


def critical_path(spec: str, config: Config, project: str) -> tuple[int, int]:
    """(provider calls on the longest chain, total calls), from a virtual-clock simulation:
    every pending agent reaction starts at once and finishes one call later."""
    offline = config.llm.offline.model_copy(update={"latency_ms": 0})
    provider = OfflineProvider(offline)
    files: dict[str, str] = {"specs/task-tracker.md": spec}
    state = ProjectState(id=project)
    seq = 0

    def append(news: list[ev.NewEvent]) -> None:
        nonlocal seq
        for new in news:
            seq += 1
            event = ev.Event(id=f"01J{seq:023d}", seq=seq, type=new.type, project=project,
                             request_id="r", causation_id=new.causation_id, actor=new.actor,
                             at="2026-01-01T00:00:00Z", payload=new.payload)  # type: ignore[arg-type]
            apply_event(state, event)

    append([ev.NewEvent(payload=ev.ProjectCreated(spec_path="specs/task-tracker.md"),
                        actor="system")])
    settings = FlowSettings(max_review_rounds=config.max_review_rounds,
                            max_qa_rework=config.max_qa_rework, loop_guard=config.loop_guard,
                            worker="bench")
    waves = calls = 0
    while True:
        reactions = pending_reactions(state, settings)
        if not reactions:
            return waves, calls
        decided = [r for r in reactions if not r.is_agent_work]
        if decided:  # zero-cost decisions of the Monitor and the CTO
            append([e for r in decided for e in r.events])
            continue
        waves += 1  # every agent reaction pending now runs in parallel: one latency
        outputs = []
        for r in reactions:
            ctx = AgentContext(project=project, state=state, config=config, provider=provider,
                               read_text=files.get, prompt=load_prompt)
            outputs.append(perform(ctx, r))
            calls += 1
        for out in outputs:
            files.update({k: v.decode() for k, v in out.files.items()})
            append(out.events)


def real_run(spec: bytes, config_yaml: str) -> tuple[float, dict[str, Any]]:
    from orchestrator.runtime.runner import run
    from orchestrator.runtime.workspace import Workspace

    directory = Path(tempfile.mkdtemp(prefix="orch-makespan-"))
    ws, _ = Workspace.init(directory)
    ws.repo.commit_files({"specs/task-tracker.md": spec,
                          ".orchestrator/config.yaml": config_yaml.encode()}, "bench setup\n")
    start = time.perf_counter()
    report, _ = run(ws, str(directory / "specs" / "task-tracker.md"), echo=lambda _: None)
    wall = time.perf_counter() - start
    view = ws.reader.views()["task-tracker"]
    return wall, {"status": view["status"], "events": view["events"], "commits": report.commits,
                  "tasks": len(view["tasks"]), "repo": str(directory)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--tasks-per-requirement", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@example.com")

    from orchestrator.adapters.yaml import dump_config_text

    raw = bench_config(args.latency_ms, args.tasks_per_requirement)
    config = Config.model_validate(raw)
    spec = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_bytes()
    waves, calls = critical_path(spec.decode(), config, "task-tracker")
    bound = waves * args.latency_ms / 1000
    wall, info = real_run(spec, dump_config_text(raw))
    ratio = wall / bound if bound else float("inf")
    result = {
        "latency_ms": args.latency_ms, "tasks_per_requirement": args.tasks_per_requirement,
        "parallelism": config.parallelism, "provider_calls": calls,
        "critical_path_calls": waves, "critical_path_bound_s": round(bound, 3),
        "wall_s": round(wall, 3), "ratio": round(ratio, 3), "goal_ratio": 1.15, **info,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(f"provider calls: {calls}, critical path: {waves} calls x {args.latency_ms} ms "
          f"= {bound:.2f} s")
    print(f"wall time: {wall:.2f} s  ratio: {ratio:.3f} (goal <= 1.15)  "
          f"[{info['status']}, {info['tasks']} tasks, {info['events']} events, "
          f"{info['commits']} commits]")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
