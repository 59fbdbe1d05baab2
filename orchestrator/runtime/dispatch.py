"""`orch dispatch`: reconcile sweeps against the remote, for many workers in many clones.

A sweep fetches, folds, claims the ready reactions and pushes the claims (a claim that lost
the race is dropped before any model is called), does the work in parallel and pushes the
results. The engine is the same as `orch run`'s; what changes is that every commit is
published through the remote, whose push is the compare-and-swap.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from orchestrator.adapters.config_file import load_config
from orchestrator.core.flow import Reaction
from orchestrator.core.state import ProjectStatus
from orchestrator.errors import PushContendedError, UsageError
from orchestrator.runtime.engine import Engine
from orchestrator.runtime.projects import adopt_specs
from orchestrator.runtime.runner import make_provider, run_lock
from orchestrator.runtime.sync import SyncReport, publish, sync
from orchestrator.runtime.worker import worker_id
from orchestrator.runtime.workspace import Workspace

_DONE = (ProjectStatus.COMPLETED, ProjectStatus.ACCEPTED)


@dataclass
class DispatchReport:
    worker: str = ""
    sweeps: int = 0
    events: int = 0
    pushes: int = 0
    rejections: int = 0
    contended: int = 0
    renewals: int = 0
    dropped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    def add(self, sync_report: SyncReport) -> None:
        self.pushes += sync_report.pushes
        self.rejections += sync_report.rejections
        self.contended += sync_report.contended
        self.dropped.extend(sync_report.dropped)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def dispatch(ws: Workspace, *, until_idle: bool = False, max_seconds: float | None = None,
             role: str | None = None, squad: str | None = None, poll_s: float = 1.0,
             echo: Callable[[str], None] = print,
             stop: threading.Event | None = None) -> DispatchReport:
    """Sweep against the remote (once, or `until_idle`); `stop` (a signal's flag) ends the
    sweep in progress as --max-seconds does: work in flight is dropped and redone later."""
    remote = ws.repo.remote()
    if remote is None:
        raise UsageError(f"{ws.root} has no remote to dispatch against; clone the shared "
                         "repository, or use 'orch run' for one process in one clone")
    config = load_config(ws.root)
    ws.repo.verify = config.git.verify
    ws.repo.preflight()
    provider = make_provider(ws, config, echo=echo)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    report = DispatchReport()
    pacing = _Pacing()
    with run_lock(ws), _heartbeat(ws, remote, config.lease_s) as peers:
        while True:
            report.add(sync(ws, remote))
            adopt_specs(ws, config, echo)
            engine = Engine(ws, config, provider, echo=echo)
            if stop is not None:
                engine.stop = stop
            report.worker = engine.worker
            engine.accepts = _filter(role, squad)
            engine.list_peers = peers
            pushed = SyncReport()

            def share(into: SyncReport = pushed) -> bool:
                pacing.wait(len(peers()))
                began = time.monotonic()
                try:
                    step = publish(ws, remote, base_delay_s=pacing.backoff_s(len(peers())))
                    pacing.pushed(time.monotonic() - began)
                except PushContendedError as exc:
                    # Many workers on one remote: losing every race of one publish is load,
                    # not failure. The commits wait here; the next pass pushes them, and no
                    # agent starts on a claim the others cannot see yet.
                    into.pushes += exc.pushes
                    into.rejections += exc.pushes
                    into.contended += 1
                    return False
                into.pushes += step.pushes
                into.rejections += step.rejections
                into.dropped.extend(step.dropped)
                return True

            engine.publish = share
            engine.branches.base = lambda: ws.repo.remote_sha(remote) or ws.repo.head()
            timer = None
            if deadline is not None:  # --max-seconds stops in-flight work like a signal
                timer = threading.Timer(max(0.0, deadline - time.monotonic()), engine.stop.set)
                timer.daemon = True
                timer.start()
            try:
                run = engine.run()
            finally:
                if timer is not None:
                    timer.cancel()
            shared = share()
            report.add(pushed)
            report.sweeps += 1
            report.events += run.events
            report.renewals += run.renewals
            report.failures.extend(run.failures)
            report.held = run.held
            report.stopped = run.stopped
            states = ws.reader.states(ws.reader.projects())
            report.projects = {p: s.status.value for p, s in states.items()}
            busy = run.events > 0 or bool(run.held) or not shared or run.deferred > 0
            if not until_idle or run.stopped or not busy or all(
                    s.status in _DONE for s in states.values()) and not run.held:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if run.events == 0:
                time.sleep(poll_s)  # others hold the work: let them push before looking again
        # What is still unpushed goes now, with patience: the sweeps are over.
        report.add(publish(ws, remote, attempts=60))
    return report


class _Pacing:
    """A fair share of the remote's pushes: with k workers dispatching, one that just pushed
    waits about k-1 of its own push times (at most MAX_PUSH_GAP_S) before it pushes again,
    which gives the others' fetch-rebase-push a window. Without it, a worker that got ahead
    pushed every pass and the others lost every race, however they backed off; what is
    ready meanwhile rides in the next push."""

    def __init__(self) -> None:
        self.last = 0.0
        self.push_s = 0.0

    def wait(self, peers: int) -> None:
        gap = min(MAX_PUSH_GAP_S, max(0, peers - 1) * self.push_s)
        left = self.last + gap - time.monotonic()
        if left > 0:
            time.sleep(left)

    def backoff_s(self, peers: int) -> float:
        """The first step of a lost race's backoff. Alone: a few milliseconds. With others
        dispatching: what this worker's publishes take lately (at most MAX_BACKOFF_S),
        backoff included, so a worker that keeps losing waits longer and leaves the remote
        to the ones that get through: on a remote whose pushes one worker's pace fills,
        the retries of all the others cost more than they bring (bench/workers.py)."""
        return 0.05 if peers <= 1 else min(MAX_BACKOFF_S, max(0.05, self.push_s))

    def pushed(self, took_s: float) -> None:
        self.push_s = took_s if not self.last else 0.7 * self.push_s + 0.3 * took_s
        self.last = time.monotonic()


MAX_PUSH_GAP_S = 2.0
MAX_BACKOFF_S = 1.0


@contextlib.contextmanager
def _heartbeat(ws: Workspace, remote: str, lease_s: int
               ) -> Iterator[Callable[[], set[str]]]:
    """While this worker dispatches, its heartbeat is on the remote (renewed every half
    lease, one push of its own ref, never of the branch): peers that see it leave it its
    share of the ready work. Yields the workers dispatching, as last fetched."""
    worker = worker_id(ws.root)
    beat = [0.0]

    def peers() -> set[str]:
        now = time.time()
        if now - beat[0] >= lease_s / 2 and ws.repo.announce(remote, worker):
            beat[0] = now
        return ws.repo.peers(int(now) - lease_s) | {worker}

    try:
        yield peers
    finally:
        ws.repo.retire(remote, worker)


def _filter(role: str | None, squad: str | None) -> Callable[[Reaction], bool]:
    def accepts(r: Reaction) -> bool:
        actor_role = r.actor.partition(".")[0]
        return (role is None or actor_role == role) and (squad is None or r.squad == squad)

    return accepts
