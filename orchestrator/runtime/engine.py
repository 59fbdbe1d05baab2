"""The reconcile loop: fold, find what the flow calls for, run agents in parallel, and commit
their validated results from this one thread, batched where they are ready together.

Reconcile, don't react once: every pass recomputes the pending reactions from the log, so a
crash or a dropped trigger loses nothing, and a reaction that is in the log is never run again.
"""

from __future__ import annotations

import copy
import hashlib
import socket
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from orchestrator.agents.base import AgentContext, AgentFailure, AgentOutput
from orchestrator.agents.provider import Provider
from orchestrator.agents.team import perform
from orchestrator.core import events as ev
from orchestrator.core.config import Config
from orchestrator.core.flow import FlowSettings, Reaction, pending_reactions
from orchestrator.core.paths import project_dir
from orchestrator.core.state import ProjectState, ProjectStatus, TaskStatus
from orchestrator.errors import ProviderError, UsageError
from orchestrator.runtime.budget import BudgetExceeded
from orchestrator.runtime.artifacts import ArtifactGuard, transcript_files
from orchestrator.runtime.workspace import Workspace

Key = tuple[str, str, str]  # project, actor, causation


def worker_id(root: str) -> str:
    """Stable per clone: a restarted run recognises (and resumes) its own claims."""
    return f"{socket.gethostname()}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


@dataclass
class RunReport:
    commits: int = 0
    events: int = 0
    failures: list[str] = field(default_factory=list)
    stopped: bool = False
    dropped: int = 0


@dataclass
class _Job:
    project: str
    reaction: Reaction
    future: Future[AgentOutput]


class Engine:
    def __init__(self, ws: Workspace, config: Config, provider: Provider,
                 echo: Callable[[str], None] = lambda _: None,
                 now: Callable[[], object] | None = None) -> None:
        self.ws = ws
        self.config = config
        self.provider = provider
        self.echo = echo
        self.worker = worker_id(str(ws.root))
        self.stop = threading.Event()
        self.guard = ArtifactGuard(ws.root)
        self._now = now
        self._failed: set[Key] = set()
        self._halted: set[str] = set()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, projects: list[str] | None = None,
            until: Callable[[dict[str, ProjectState]], bool] | None = None) -> RunReport:
        report = RunReport()
        jobs: dict[Key, _Job] = {}
        pool = ThreadPoolExecutor(max_workers=self.config.parallelism,
                                  thread_name_prefix="orch-agent")
        try:
            while not self.stop.is_set():
                states = self._states(projects)
                if until is not None and until(states) and not jobs:
                    break
                progressed = False
                for project, state in states.items():
                    if project in self._halted:
                        continue
                    progressed |= self._step(project, state, jobs, pool, report)
                if not jobs and not progressed:
                    break
                if jobs and not progressed:
                    wait([j.future for j in jobs.values()], timeout=0.5,
                         return_when=FIRST_COMPLETED)
                for key, job in list(jobs.items()):
                    if job.future.done():
                        del jobs[key]
                        self._finish(job, report)
        finally:
            report.stopped = self.stop.is_set()
            report.dropped = sum(1 for j in jobs.values() if not j.future.done())
            pool.shutdown(wait=not report.stopped, cancel_futures=True)
        return report

    def _states(self, projects: list[str] | None) -> dict[str, ProjectState]:
        names = projects if projects is not None else self.ws.reader.projects()
        return self.ws.reader.states(names)

    def _settings(self) -> FlowSettings:
        from orchestrator.adapters.clock import utcnow

        return FlowSettings(max_review_rounds=self.config.max_review_rounds,
                            max_qa_rework=self.config.max_qa_rework,
                            loop_guard=self.config.loop_guard, worker=self.worker,
                            now=utcnow())

    def _step(self, project: str, state: ProjectState, jobs: dict[Key, _Job],
              pool: ThreadPoolExecutor, report: RunReport) -> bool:
        """Commit the decided reactions of a project in one batch; start its agent work."""
        reactions = [r for r in pending_reactions(state, self._settings())
                     if (project, *r.key) not in self._failed]
        decided = [r for r in reactions if not r.is_agent_work]
        if decided:
            events = [e for r in decided for e in r.events]
            self._append(project, events, {}, report, f"[{project}] monitor: "
                         + ", ".join(sorted({r.kind for r in decided})))
            return True
        started = False
        for r in reactions:
            key = (project, *r.key)
            if key in jobs:
                continue
            if r.kind == "work" and state.tasks[r.subject].status == TaskStatus.ASSIGNED:
                claim = ev.NewEvent(
                    payload=ev.TaskStarted(task_id=r.subject, lease_s=self.config.lease_s,
                                           worker=self.worker),
                    actor=r.actor, causation_id=r.causation_id,
                    request_id=state.request_id or None)
                self._append(project, [claim], {}, report)
                started = True
            ctx = AgentContext(project=project, state=copy.deepcopy(state), config=self.config,
                               provider=self.provider, read_text=self.guard.read_text)
            jobs[key] = _Job(project, r, pool.submit(perform, ctx, r))
        return started

    # -- results -------------------------------------------------------------------------------

    def _finish(self, job: _Job, report: RunReport) -> None:
        r = job.reaction
        try:
            out = job.future.result()
            files = self.guard.check(job.project, out.files)
        except AgentFailure as exc:
            self._fail(job.project, r, exc.kind, exc.reason, report)
            return
        except BudgetExceeded as exc:
            self._fail(job.project, r, "budget_exceeded", str(exc), report)
            return
        except ProviderError as exc:
            self._fail(job.project, r, "provider_error", str(exc), report)
            return
        files.update(transcript_files(job.project, r, out.transcripts))
        events = list(out.events)
        if files and events:
            transcripts = [ev.Link(kind="transcript", ref=p) for p in sorted(files)
                           if p.startswith(".orchestrator/transcripts/")]
            first = events[0]
            events[0] = first.model_copy(update={"links": first.links + tuple(transcripts)})
        try:
            self._append(job.project, events, files, report)
        except UsageError as exc:
            self._fail(job.project, r, "invalid_output", f"refused by the log: {exc}", report)

    def _append(self, project: str, events: list[ev.NewEvent], files: dict[str, bytes],
                report: RunReport, subject: str | None = None) -> None:
        written = self.ws.log.append(project, events, files=files, subject=subject)
        report.commits += 1
        report.events += len(written)
        for e in written:
            what = e.payload.subject()
            self.echo(f"[{project}] {e.seq:>5} {e.type:<26} {e.actor:<18} "
                      f"{what if ':' not in what else ''}".rstrip())

    def _fail(self, project: str, r: Reaction, kind: str, reason: str,
              report: RunReport) -> None:
        """Fail closed: nothing of the reaction is written; an alert names role, task, reason."""
        key = (project, *r.key)
        self._failed.add(key)
        message = f"{r.actor} {r.kind} {r.subject}: {reason}".replace("  ", " ")[:1500]
        report.failures.append(f"[{project}] {message}")
        if kind == "budget_exceeded":
            self._halted.add(project)
        state = self.ws.reader.states([project])[project]
        task = state.tasks.get(r.subject) if r.kind == "work" else None
        task_id = task.id if task and task.status in (
            TaskStatus.ASSIGNED, TaskStatus.IN_PROGRESS) else ""
        if kind not in ("invalid_output", "path_refused", "provider_error", "budget_exceeded",
                        "loop_guard"):
            kind = "other"
        alert = ev.MonitorAlert(
            kind=kind, severity="error", message=message, task_id=task_id,  # type: ignore[arg-type]
            module=r.squad, notify=[f"pm.{r.squad}"] if r.squad else ["cto"])
        try:
            self._append(project, [ev.NewEvent(payload=alert, actor=_monitor(r),
                                               causation_id=r.causation_id,
                                               request_id=state.request_id or None)],
                         {}, report)
        except UsageError:
            pass  # the same alert is in the log already (an earlier run failed the same way)
        if task_id:
            self._failed.discard(key)  # the task moved to qa_failed: the Monitor takes it


def _monitor(r: Reaction) -> str:
    return f"monitor.{r.squad}" if r.squad else "monitor"


def project_done(project: str) -> Callable[[dict[str, ProjectState]], bool]:
    def done(states: dict[str, ProjectState]) -> bool:
        s = states.get(project)
        return s is not None and s.status in (ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED)

    return done


__all__ = ["Engine", "RunReport", "project_done", "project_dir"]
