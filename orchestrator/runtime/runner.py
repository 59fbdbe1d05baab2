"""`orch run` and `orch demo`: config, provider, one run per clone, clean stops on signals."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.adapters.cache import git_dir
from orchestrator.adapters.config_file import load_config
from orchestrator.core.config import Config
from orchestrator.core.provider import Provider
from orchestrator.core.state import ProjectState
from orchestrator.errors import ConfigError, GitError, OrchError, UsageError
from orchestrator.runtime.artifacts import TRANSCRIPTS_DIR
from orchestrator.runtime.engine import Engine, RunReport, project_done
from orchestrator.runtime.projects import adopt_specs, submit
from orchestrator.runtime.workspace import Workspace


def make_provider(ws: Workspace, config: Config, replay: bool = False,
                  echo: Callable[[str], None] = print) -> Provider:
    """The configured provider, behind the per-project budget when one is configured."""
    provider = _base_provider(ws, config, replay, echo)
    budget = config.llm.budget
    if replay or (budget.max_tokens is None and budget.max_cost_usd is None):
        return provider
    # Built from the log once per process (failed calls' usage is on their alerts), then
    # kept up to date by every call of this run: no run or watch pass starts from zero.
    from orchestrator.core.events import Usage
    from orchestrator.runtime.budget import Budget, BudgetedProvider

    budgets: dict[str, Budget] = {}
    lock = threading.Lock()

    def budget_for(project: str) -> Budget:
        with lock:
            if project not in budgets:
                used = ws.reader.states([project])[project].usage
                budgets[project] = Budget.from_usage(budget, [Usage(
                    prompt_tokens=used.prompt_tokens, completion_tokens=used.completion_tokens,
                    cost_usd=used.cost_usd)], project=project)
            return budgets[project]

    attach = getattr(provider, "attach_budgets", None)
    if callable(attach):  # it reserves per HTTP attempt, retries and re-asks included
        attach(budget_for)
        return provider
    return BudgetedProvider(provider, budget_for, config.llm)


def _base_provider(ws: Workspace, config: Config, replay: bool,
                   echo: Callable[[str], None]) -> Provider:
    """`replay` answers from the transcripts committed in the repository, offline."""
    if replay or config.llm.provider == "replay":
        from orchestrator.adapters.llm.transcripts import ReplayProvider, load_transcripts

        records: list[dict[str, Any]] = []
        base = ws.root / TRANSCRIPTS_DIR
        for folder in [base, *sorted(p for p in base.glob("*") if p.is_dir())]:
            found, problems = load_transcripts(folder)
            records.extend(found)
            for name, reason in problems:
                echo(f"Skipped transcript {folder.name}/{name}: {reason}")
        if not records:
            raise OrchError(f"no transcripts under {TRANSCRIPTS_DIR}/ to replay; record a run "
                            "with a model first")
        return ReplayProvider(records)
    if config.llm.provider == "openai":
        from orchestrator.adapters.llm.openai_provider import OpenAIProvider

        return OpenAIProvider(config.llm, os.environ,
                              max_depth=config.max_decomposition_depth,
                              mode_cache=git_dir(ws.root) / "orch" / "structured-output.json")
    from orchestrator.sim.provider import OfflineProvider

    return OfflineProvider(config.llm.offline)


@contextmanager
def run_lock(ws: Workspace) -> Iterator[None]:
    """One `orch run` per clone: its claims are then safely its own to resume after a crash."""
    path = git_dir(ws.root) / "orch" / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise OrchError("another 'orch run' is working in this clone; wait for it or "
                            "stop it") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(ws: Workspace, spec: str | None = None, *, replay: bool = False,
        echo: Callable[[str], None] = print,
        progress: Callable[[dict[str, ProjectState], int], None] | None = None,
        ) -> tuple[RunReport, list[str]]:
    """Reconcile until the target project completes (or every project idles), or a signal."""
    config = load_config(ws.root)
    ws.repo.verify = config.git.verify
    ws.repo.preflight()
    provider = make_provider(ws, config, replay, echo)
    with run_lock(ws):
        target = None
        if spec is not None:
            target, new = submit(ws, spec)
            echo(f"{'Submitted' if new else 'Resuming'} {spec} as project '{target}'")
        for project in adopt_specs(ws, config, echo):
            echo(f"Picked up a committed spec as project '{project}'")
        engine = Engine(ws, config, provider, echo=echo, progress=progress)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def stop(signum: int, frame: FrameType | None) -> None:
            # The first signal lets the calls in flight finish (they are paid for either
            # way: the server answers them); a second one drops them.
            (engine.stop if engine.draining.is_set() else engine.draining).set()

        for sig in previous:
            signal.signal(sig, stop)
        try:
            report = engine.run(projects=[target] if target else None,
                                until=project_done(target) if target else None)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            ws.repo.maintenance()
    return report, [target] if target else ws.reader.projects()


def demo(directory: Path | None, echo: Callable[[str], None] = print) -> Workspace:
    """A fresh repository with the example spec, the whole run, ready for `orch status`."""
    if directory is None:
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="orch-demo-"))
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty; give 'orch demo' a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    if shutil.which("git") is None:
        raise OrchError("git is not installed; install git first")
    ws, _ = Workspace.init(directory)
    spec = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_bytes()
    config = resources.files("orchestrator.examples").joinpath("demo-config.yaml").read_bytes()
    ws.repo.commit_files({"specs/task-tracker.md": spec, ".orchestrator/config.yaml": config},
                         "spec: task tracker for small teams (the demo's example)\n")
    echo(f"Demo repository: {directory}")
    run(ws, str(directory / "specs" / "task-tracker.md"), echo=echo)
    return ws


REMOTE_POLL_S = 5.0
"""How often `orch watch` fetches the remote to see whether it moved (at most every poll)."""


def watch(ws: Workspace, *, echo: Callable[[str], None] = print, poll_s: float = 30.0,
          stop: threading.Event | None = None) -> int:
    """Reconcile now, then again whenever specs/ or the event log change (or every poll_s,
    for what a watcher can miss), until SIGINT/SIGTERM or `stop`; returns the passes made."""
    from orchestrator.adapters.eventfiles import EVENTS_DIR
    from orchestrator.adapters.watch import ChangeWatch

    stop = stop or threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if threading.current_thread() is threading.main_thread():
        for sig in previous:
            signal.signal(sig, lambda signum, frame: stop.set())
    passes = 0
    # A clone of a shared repository sweeps against its remote (`orch dispatch`), and looks
    # at the remote as well as at its own folders for what changed.
    remote = ws.repo.remote()
    try:
        with ChangeWatch([ws.root / "specs", ws.root / EVENTS_DIR]) as changes:
            while not stop.is_set():
                # HEAD is read before the pass reads the tree: a commit that lands during
                # the pass (a spec written, then committed) is seen as a moved HEAD below.
                # The file watch alone misses it: the write wakes a pass that finds the spec
                # not yet committed, and the commit itself only writes under .git/.
                seen = ws.repo.head()
                ws.reader.invalidate()
                stopped = False
                try:
                    if remote is None:
                        stopped = run(ws, echo=echo)[0].stopped
                    else:
                        from orchestrator.runtime.dispatch import dispatch

                        stopped = dispatch(ws, until_idle=True, echo=echo, stop=stop).stopped
                except (GitError, ConfigError) as exc:  # a person's concurrent commit, a bad
                    echo(f"Error: {exc}; watching on")  # config being edited: try again later
                passes += 1
                if stopped:
                    break
                upstream = ws.repo.remote_sha(remote) if remote is not None else None
                deadline = time.monotonic() + poll_s
                next_fetch = time.monotonic() + min(poll_s, REMOTE_POLL_S)
                while not stop.is_set() and time.monotonic() < deadline:
                    if changes.wait(0.5) or ws.repo.head() != seen:
                        break
                    if remote is not None and time.monotonic() >= next_fetch:
                        next_fetch = time.monotonic() + min(poll_s, REMOTE_POLL_S)
                        try:
                            if ws.repo.fetch(remote) != upstream:
                                break  # another worker or a person pushed: sweep again
                        except GitError as exc:  # the remote is away for now: keep watching
                            echo(f"Error: {exc}; watching on")
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return passes
