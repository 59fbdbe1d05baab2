"""`orch dispatch --plan-only`: a plan job's work in its own clone, handed over as a bundle
(nothing pushed), and `orch lanes`, the independent parts of the work for parallel plans.

The plan works many passes, committing only in its clone, until its lane is idle or its time
budget is spent; then what it did since the remote's head (events and files) becomes a
bundle for `orch apply`. The claims of work still in flight at the end are left out, so the
next run's worker can take that work at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.adapters.clock import utcnow
from orchestrator.adapters.config_file import load_config
from orchestrator.core.bundle_rules import in_flight_claims
from orchestrator.core.config import Config
from orchestrator.core.flow import FlowSettings, Reaction
from orchestrator.core.lanes import Lane, plan_lanes
from orchestrator.errors import UsageError
from orchestrator.runtime.bundle import events_of, export_bundle
from orchestrator.runtime.engine import Engine
from orchestrator.runtime.projects import adopt_specs, new_projects, unclaimed_specs
from orchestrator.runtime.runner import make_provider, run_lock
from orchestrator.runtime.workspace import Workspace


@dataclass
class PlanReport:
    worker: str = ""
    base: str | None = None
    events: int = 0
    paths: int = 0
    in_flight: int = 0
    stopped: bool = False
    failures: list[str] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def lanes(ws: Workspace, config: Config) -> list[Lane]:
    """The lanes of the work pending now (held claims of other workers excluded)."""
    settings = FlowSettings(max_review_rounds=config.max_review_rounds,
                            max_qa_rework=config.max_qa_rework, loop_guard=config.loop_guard,
                            max_failures=config.max_failures,
                            review_mode=config.review.mode, now=utcnow())
    _, candidates = unclaimed_specs(ws, config)
    specs = {p: c.path for p, c in new_projects(ws, candidates).items() if c.refused is None}
    return plan_lanes(ws.reader.states(ws.reader.projects()), settings, specs)


def plan(ws: Workspace, out: Path, *, max_seconds: float | None = None,
         project: str | None = None, squad: str | None = None, role: str | None = None,
         echo: Callable[[str], None] = print) -> PlanReport:
    """Work the lane (one project, one squad of it, or everything) until idle or out of
    time, committing in this clone only; then write what it did as a bundle at out."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} is not an empty folder; name a new folder for the bundle")
    config = load_config(ws.root)
    ws.repo.verify = config.git.verify
    ws.repo.preflight()
    head = ws.repo.head()
    remote = ws.repo.remote()
    upstream = ws.repo.remote_sha(remote) if remote is not None else None
    # From where the remote is: what this clone committed before (the author's command
    # of this run) travels in the bundle too.
    base = ws.repo.merge_base(head, upstream) if head and upstream else head
    seconds = config.github.plan_seconds if max_seconds is None else max_seconds
    report = PlanReport(base=base)
    with run_lock(ws):
        adopt_specs(ws, config, echo, only=project)
        provider = make_provider(ws, config, echo=echo)
        engine = Engine(ws, config, provider, echo=echo)
        report.worker = engine.worker
        engine.accepts = _accepts(role, squad)
        if squad is not None:
            engine.decides = _accepts(None, squad)
        timer = threading.Timer(seconds, engine.stop.set)  # stops in-flight work like Ctrl-C
        timer.daemon = True
        timer.start()
        try:
            run = engine.run([project] if project else None)
        finally:
            timer.cancel()
    report.events, report.stopped, report.failures = run.events, run.stopped, run.failures
    states = ws.reader.states(ws.reader.projects())
    report.projects = {p: s.status.value for p, s in states.items()}
    left: set[str] = set()

    def leave_out(changes: dict[str, bytes | None]) -> set[str]:
        events = dict(events_of(changes))
        flying = in_flight_claims(list(events.values()))
        left.update(path for path, e in events.items() if e.id in flying)
        return left

    manifest = export_bundle(ws, base, out, worker=engine.worker, leave_out=leave_out)
    report.paths, report.in_flight = len(manifest["paths"]), len(left)
    return report


def _accepts(role: str | None, squad: str | None) -> Callable[[Reaction], bool]:
    def accepts(r: Reaction) -> bool:
        return (role is None or r.actor.partition(".")[0] == role) and (
            squad is None or r.squad == squad)

    return accepts
