"""The reconcile loop: fold, find what the flow calls for, run agents in parallel, and commit
their validated results from this one thread, batched where they are ready together.

Reconcile, don't react once: every pass recomputes the pending reactions from the log, so a
crash or a dropped trigger loses nothing, and a reaction that is in the log is never run again.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime

from orchestrator.adapters.crash_points import crash_point
from orchestrator.agents.base import AgentContext, AgentFailure, AgentOutput
from orchestrator.agents.team import perform
from orchestrator.core import events as ev
from orchestrator.core.claims import (
    TIME_FORMAT,
    active_workers,
    claim_events,
    claim_key,
    expires_at,
    held_by_others,
    plan_claim,
    preferred_worker,
)
from orchestrator.core.config import Config
from orchestrator.core.failures import failure_alert
from orchestrator.core.flow import FlowSettings, Reaction, pending_reactions
from orchestrator.core.paths import project_dir
from orchestrator.core.provider import Provider
from orchestrator.core.state import ProjectState, ProjectStatus
from orchestrator.errors import GitError, ProviderError, UsageError
from orchestrator.runtime.artifacts import ArtifactGuard, transcript_files
from orchestrator.runtime.budget import BudgetExceeded
from orchestrator.runtime.deploy import deploy_runner
from orchestrator.runtime.prompts import load_prompt
from orchestrator.runtime.qa_run import CheckRunner
from orchestrator.runtime.task_branches import TaskBranches
from orchestrator.runtime.worker import worker_id
from orchestrator.runtime.workspace import Workspace

Key = tuple[str, str, str]  # project, actor, causation
CLAIM_GRACE_S = 2.0
"""How long ready work waits for its preferred worker before any other claims it, at least:
four of this worker's recent publishes, so that a loaded remote does not turn the grace into
a race."""


@dataclass
class RunReport:
    commits: int = 0
    events: int = 0
    failures: list[str] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    """(project, reaction label) of the reactions whose failure here was their last before
    `orch retry`."""
    stopped: bool = False
    dropped: int = 0
    renewals: int = 0
    deferred: int = 0
    """Looks at ready work left to the peer it falls to (claimed here after a grace)."""
    held: list[str] = field(default_factory=list)
    """Reactions other workers hold claims on when the run stopped: which, whose, until."""


@dataclass
class _Job:
    project: str
    reaction: Reaction
    future: Future[AgentOutput]
    claim: str
    ctx: AgentContext | None = None


class Engine:
    def __init__(self, ws: Workspace, config: Config, provider: Provider,
                 echo: Callable[[str], None] = lambda _: None,
                 progress: Callable[[dict[str, ProjectState], int], None] | None = None
                 ) -> None:
        self.ws = ws
        self.config = config
        self.provider = provider
        self.echo = echo
        self.worker = worker_id(ws.root)
        self.stop = threading.Event()
        """Stop now: calls in flight are dropped (a second Ctrl-C, `--max-seconds`)."""
        self.draining = threading.Event()
        """Stop starting work: the calls in flight finish and their results are committed,
        so that nothing already paid for is paid again (the first Ctrl-C of `orch run`)."""
        self.guard = ArtifactGuard(ws.root, ws.log.staged_file)
        self.deploy = deploy_runner(ws.root, config, self.guard.read_text)
        self.checks = CheckRunner(config.qa)
        self.branches = TaskBranches(ws, self.guard.read_text)
        """A branch per task: Dev files go there, QA reads them there, merges land here."""
        self.progress = progress
        self._failed: set[Key] = set()
        self._halted: set[str] = set()
        self._read_lock = threading.Lock()
        self._committed: dict[tuple[str, str], str | None] = {}
        self._peers: set[str] = {self.worker}
        self._ready_since: dict[tuple[str, str], float] = {}
        self._push_s = 0.0
        """How long a publish takes here lately (moving average): the grace scales with it."""
        self.list_peers: Callable[[], set[str]] = lambda: set()
        """The workers dispatching on the same remote, by their heartbeats as last fetched
        (`orch dispatch`); asked every pass, since peers come and go during a sweep."""
        self.accepts: Callable[[Reaction], bool] = lambda _: True
        """Which agent work this worker takes (`orch dispatch --role/--squad`)."""
        self.decides: Callable[[Reaction], bool] = lambda _: True
        """Which decided reactions this worker writes: a plan job of one squad writes only
        its squad's, so two plan jobs never decide the same reaction twice."""
        self.publish: Callable[[], bool] | None = None
        """Shares what was committed through the remote (`orch dispatch`): claims are
        published, and re-checked against what came in, before any agent starts; False when
        the push did not land (the remote is contended), and then no agent starts."""

    # -- the loop ------------------------------------------------------------------------------

    def run(self, projects: list[str] | None = None,
            until: Callable[[dict[str, ProjectState]], bool] | None = None) -> RunReport:
        report = RunReport()
        jobs: dict[Key, _Job] = {}
        pool = ThreadPoolExecutor(max_workers=self.config.parallelism,
                                  thread_name_prefix="orch-agent")
        announced = False
        try:
            while not self.stop.is_set():
                # One commit per pass: the results that are ready, what the flow decides
                # from them, and the claims of the work that starts now.
                done = [k for k, j in jobs.items() if j.future.done()]
                progressed = self._finish_batch([jobs.pop(k) for k in done], report)
                states = self._states(projects)
                starting: list[tuple[str, Reaction, AgentContext, str]] = []
                now = self._settings().now
                assert now is not None
                self._peers = self.list_peers() | active_workers(list(states.values()),
                                                                 self.worker, now)
                self._renew(jobs, states, now, report)
                if self.draining.is_set():
                    if not jobs:
                        break
                    if not announced:
                        announced = True
                        self.echo(f"Stopping: {len(jobs)} call(s) in flight finish first; "
                                  "Ctrl-C again drops them")
                else:
                    for project, state in states.items():
                        if project not in self._halted:
                            progressed |= self._step(project, state, jobs, starting, report)
                # Agents read only their snapshot, so they start before the commit: writing
                # it overlaps their model calls. A crash loses nothing that was committed,
                # and what was not is decided again by the next run.
                if self.publish is not None and (starting or self.ws.log.has_staged()):
                    # Also when only resumed claims start: they may not be pushed yet.
                    self.ws.log.commit()
                    began = time.monotonic()
                    landed = self.publish()
                    self._push_s = 0.7 * self._push_s + 0.3 * (time.monotonic() - began)
                    starting = self._still_claimed(starting) if landed else []
                for project, r, ctx, claim in starting:
                    jobs[(project, *r.key)] = _Job(project, r, pool.submit(perform, ctx, r),
                                                   claim, ctx)
                self._commit(report)
                if self.progress is not None:
                    self.progress(self._states(projects), len(jobs))
                if until is not None and until(self._states(projects)) and not jobs:
                    break
                if not jobs and not progressed:
                    break
                if jobs and not progressed:
                    wait([j.future for j in jobs.values()], timeout=0.5,
                         return_when=FIRST_COMPLETED)
        finally:
            self.ws.log.commit()  # what was finished is committed, whatever stops the run
            report.stopped = self.stop.is_set() or self.draining.is_set()
            report.dropped = sum(1 for j in jobs.values() if not j.future.done())
            pool.shutdown(wait=not self.stop.is_set(), cancel_futures=True)
        report.held = self._held(projects)
        return report

    def _renew(self, jobs: dict[Key, _Job], states: dict[str, ProjectState], now: datetime,
               report: RunReport) -> None:
        """Renew the leases of calls still in flight, so that peers see they are alive and a
        long call is not taken over. A renewal is one event and rides in the pass's one commit
        and push; when one is due (half its lease gone) every claim past a quarter of its lease
        renews with it, so a worker pushes renewals at most about twice a lease, however many
        calls it has in flight (none at all while calls are shorter than half a lease)."""
        live = []
        for job in jobs.values():
            state = states.get(job.project)
            current = state.claims.get(claim_key(job.reaction.actor, job.reaction.causation_id)) \
                if state is not None else None
            if job.future.done() or current is None or current.done \
                    or current.event_id != job.claim:
                continue  # finished, or lost: the fence keeps a lost claim's result out
            left = (expires_at(current) - now).total_seconds()
            live.append((job, current, left))
        if not any(left < c.lease_s / 2 for _, c, left in live):
            return
        for job, current, left in live:
            if left >= current.lease_s * 3 / 4:
                continue
            r = job.reaction
            renewal = ev.NewEvent(payload=ev.ReactionClaimed(
                worker=self.worker, lease_s=self.config.lease_s, takeover_of=job.claim,
                kind=r.kind), actor=r.actor, causation_id=r.causation_id,
                request_id=states[job.project].request_id or None)
            try:
                written = self.ws.log.stage(job.project, [renewal])
            except UsageError:
                continue  # the log no longer holds this claim: the result will be fenced
            job.claim = written[0].id
            report.events += 1
            report.renewals += 1

    def _still_claimed(self, starting: list[tuple[str, Reaction, AgentContext, str]]
                       ) -> list[tuple[str, Reaction, AgentContext, str]]:
        """After a push that had to rebase: only work whose claim survived starts, on the
        state as it is now."""
        kept = []
        for project, r, ctx, claim in starting:
            state = self.ws.reader.states([project])[project]
            current = state.claims.get(claim_key(r.actor, r.causation_id))
            if current is not None and current.event_id == claim and not current.done \
                    and not r.done_in(state):
                kept.append((project, r, replace(ctx, state=copy.deepcopy(state)), claim))
        return kept

    def _held(self, projects: list[str] | None) -> list[str]:
        now = self._settings().now
        assert now is not None
        return [f"[{p}] {key.replace(' ', ' on ')} is held by {c.worker} until "
                f"{expires_at(c).strftime(TIME_FORMAT)}"
                for p, s in self._states(projects).items()
                for key, c in held_by_others(s, self.worker, now)]

    def _states(self, projects: list[str] | None) -> dict[str, ProjectState]:
        names = projects if projects is not None else self.ws.reader.projects()
        return self.ws.reader.states(names)

    def _settings(self) -> FlowSettings:
        from orchestrator.adapters.clock import utcnow

        return FlowSettings(max_review_rounds=self.config.max_review_rounds,
                            max_qa_rework=self.config.max_qa_rework,
                            loop_guard=self.config.loop_guard, worker=self.worker,
                            max_failures=self.config.max_failures,
                            review_mode=self.config.review.mode, now=utcnow())

    def _step(self, project: str, state: ProjectState, jobs: dict[Key, _Job],
              starting: list[tuple[str, Reaction, AgentContext, str]],
              report: RunReport) -> bool:
        """Stage the decided reactions of a project (they may cascade), then the claims of
        its agent work that can start; returns whether anything was staged."""
        staged = False
        for _ in range(20):
            reactions = [r for r in pending_reactions(state, self._settings())
                         if (project, *r.key) not in self._failed]
            decided = [r for r in reactions if r.events and self.decides(r)]
            git_work = [r for r in reactions if r.is_git_work and self.decides(r)]
            if not decided and not git_work:
                break
            events = [e for r in decided for e in r.events]
            self._stage(project, events, {}, report)
            for r in git_work:
                self._git_work(project, r, report)
            state = self.ws.reader.states([project])[project]
            staged = True
        self.branches.retire(project, state)
        new = [r for r in reactions if r.is_agent_work and (project, *r.key) not in jobs
               and self.accepts(r)]
        if self.publish is not None:
            # Sharing a remote: claim only what this worker can start now, and of that first
            # its own share among the workers dispatching, leaving the rest to the others
            # instead of queueing it behind its own pool. Without that, the worker whose
            # result made work ready claimed it in the same push, before any peer saw it,
            # and one worker did everything while the others lost every race.
            free = self.config.parallelism - len(jobs) - len(starting)
            mine = [r for r in new if self._mine_to_claim(project, state, r)]
            report.deferred += len(new) - len(mine)
            new = mine[:max(0, free)]
        if not new:
            return staged
        # Agents only read their state: one snapshot serves every job started together.
        snapshot = copy.deepcopy(state)
        started = False
        for r in new:
            claim = self._claim(project, state, r, report)
            if not claim:
                continue
            ctx = AgentContext(project=project, state=snapshot, config=self.config,
                               provider=self.provider,
                               read_text=self.branches.reader(snapshot, r),
                               prompt=load_prompt, run_deploy=self.deploy,
                               run_checks=self.checks.run, read_committed=self._read_committed)
            starting.append((project, r, ctx, claim))
            started = True
        return staged or started

    def _mine_to_claim(self, project: str, state: ProjectState, r: Reaction) -> bool:
        """This worker's own claims to resume, the reactions it is the preferred worker of,
        and any that has waited unclaimed past the grace (its preferred worker is busy or
        gone: the work never waits for one worker)."""
        key = claim_key(r.actor, r.causation_id)
        if len(self._peers) <= 1 or preferred_worker(key, self._peers) == self.worker:
            return True
        now = self._settings().now
        assert now is not None
        if plan_claim(state, r.actor, r.causation_id, self.worker, now).action == "resume":
            return True
        first = self._ready_since.setdefault((project, key), time.monotonic())
        return time.monotonic() - first >= max(CLAIM_GRACE_S, 4 * self._push_s)

    def _claim(self, project: str, state: ProjectState, r: Reaction, report: RunReport) -> str:
        """The id of this worker's claim on a reaction it may now work ('' when it may not):
        its own (resumed), a new one, or one taking over another's expired lease."""
        now = self._settings().now
        assert now is not None
        plan = plan_claim(state, r.actor, r.causation_id, self.worker, now)
        if plan.action == "resume" and plan.claim is not None:
            return plan.claim.event_id
        if plan.action not in ("claim", "take_over"):
            return ""
        new = claim_events(state, r, plan, self.worker, self.config.lease_s)
        if isinstance(new[0].payload, ev.TaskStarted):
            self.branches.cut(project, state.tasks[r.subject])
        try:
            written = self.ws.log.stage(project, new)
        except UsageError:
            return ""  # the log says another claim stands: leave the reaction to it
        report.events += len(written)
        return written[0].id

    def _read_committed(self, path: str, commit: str) -> str | None:
        """A file as committed (the spec at its spec_ref), read once per run, under a lock:
        agents call this from their threads."""
        with self._read_lock:
            if (path, commit) not in self._committed:
                try:
                    data = dict(self.ws.repo.read_tree_files(commit, path)).get(path)
                except GitError:
                    data = None
                self._committed[(path, commit)] = (
                    data.decode("utf-8", "replace") if data is not None else None)
            return self._committed[(path, commit)]

    def _git_work(self, project: str, r: Reaction, report: RunReport) -> None:
        """A merge or a review request: git's work, done here in order (each merge is
        checked against the one before it), never by an agent."""
        try:
            written = self.branches.perform(project, r)
        except (GitError, UsageError) as exc:
            self._fail(project, r, "other", str(exc), report)
            return
        report.events += len(written)
        report.commits += 1
        for e in written:
            self.echo(f"[{project}] {e.seq:>5} {e.type:<26} {e.actor:<18} "
                      f"{e.payload.subject()}".rstrip())

    # -- results -------------------------------------------------------------------------------

    def _finish_batch(self, done: list[_Job], report: RunReport) -> bool:
        """Results that are ready together go in one commit per project."""
        ready: dict[str, list[tuple[Reaction, list[ev.NewEvent], dict[str, bytes]]]] = {}
        for job in done:
            result = self._validated(job, report)
            if result is not None:
                ready.setdefault(job.project, []).append((job.reaction, *result))
        for project, items in ready.items():
            for r, evs, fs in items:  # one bad result must not sink the others
                try:
                    self._stage(project, evs, fs, report)
                except UsageError as exc:
                    self._fail(project, r, "invalid_output", f"refused by the log: {exc}",
                               report)
        return bool(done)

    def _validated(self, job: _Job, report: RunReport
                   ) -> tuple[list[ev.NewEvent], dict[str, bytes]] | None:
        r = job.reaction
        try:
            out = job.future.result()
            crash_point("after-model")
            files = self.guard.check(job.project, out.files)
        except AgentFailure as exc:
            self._fail(job.project, r, exc.kind, exc.reason, report, job.ctx)
            return None
        except BudgetExceeded as exc:
            self._fail(job.project, r, "budget_exceeded", str(exc), report, job.ctx)
            return None
        except ProviderError as exc:
            self._fail(job.project, r, "provider_error", str(exc), report, job.ctx)
            return None
        transcripts = transcript_files(job.project, r, out.transcripts)
        # Every result names the claim it was made under: the fold fences it on that.
        claim = (ev.Link(kind="claim", ref=job.claim),)
        events = [e.model_copy(update={"links": e.links + claim}) for e in out.events]
        if r.kind == "work" and job.ctx is not None:
            try:
                events, files = self.branches.commit_work(
                    job.project, job.ctx.state.tasks[r.subject], events, files)
            except GitError as exc:
                self._fail(job.project, r, "other", f"cannot commit on the task's branch: "
                           f"{exc}", report, job.ctx)
                return None
        if transcripts and events:
            links = tuple(ev.Link(kind="transcript", ref=p) for p in sorted(transcripts))
            events[0] = events[0].model_copy(update={"links": events[0].links + links})
        return events, {**files, **transcripts}

    def _stage(self, project: str, events: list[ev.NewEvent], files: dict[str, bytes],
               report: RunReport) -> None:
        written = self.ws.log.stage(project, events, files=files)
        report.events += len(written)
        for e in written:
            what = e.payload.subject()
            self.echo(f"[{project}] {e.seq:>5} {e.type:<26} {e.actor:<18} "
                      f"{what if ':' not in what else ''}".rstrip())

    def _commit(self, report: RunReport) -> None:
        """Hand what was staged to the log's writer thread: git's work overlaps the next pass
        and the agents' calls. The run drains it before it returns."""
        if self.ws.log.has_staged():
            self.ws.log.commit(wait=False)
            report.commits += 1

    def _fail(self, project: str, r: Reaction, kind: str, reason: str,
              report: RunReport, ctx: AgentContext | None = None) -> None:
        """Fail closed: nothing of the reaction is written; an alert names role, task, reason
        and attempt, and carries what the failed calls cost (with their transcripts), so the
        budget of every later run counts it."""
        key = (project, *r.key)
        self._failed.add(key)
        state = self.ws.reader.states([project])[project]
        failure = failure_alert(state, r, kind, reason, self.config.max_failures)
        alert = failure.alert
        report.failures.append(f"[{project}] {alert.message}")
        if kind == "budget_exceeded":
            self._halted.add(project)
        if failure.waits:
            report.waiting.append((project, r.label))
        usage = ctx.spent_total() if ctx is not None else None
        files = transcript_files(project, r, ctx.transcripts, tag=f"failed{alert.attempt}") \
            if ctx is not None else {}
        links = tuple(ev.Link(kind="transcript", ref=p) for p in sorted(files))
        # A UsageError here means this attempt's alert is in the log already (another worker
        # failed the same attempt): nothing more to say.
        with contextlib.suppress(UsageError):
            self._stage(project, [ev.NewEvent(payload=alert, actor=_monitor(r),
                                              causation_id=r.causation_id, usage=usage,
                                              links=links,
                                              request_id=state.request_id or None)],
                        files, report)
        if failure.task_attempt:
            self._failed.discard(key)  # the task moved to qa_failed: the Monitor takes it


def _monitor(r: Reaction) -> str:
    return f"monitor.{r.squad}" if r.squad else "monitor"


def project_done(project: str) -> Callable[[dict[str, ProjectState]], bool]:
    def done(states: dict[str, ProjectState]) -> bool:
        s = states.get(project)
        return s is not None and s.status in (ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED)

    return done


__all__ = ["Engine", "RunReport", "project_done", "project_dir"]
