"""Shared helpers of bench/status.py and bench/append.py: logs that look like real ones.

`Story` plays one project's flow (created, spec review, charter, squads planned, then tasks
going assigned -> started -> completed -> QA -> passed or failed -> rework, with blocks, stale
claims, dependency requests, deploys, module and project completion and new rounds) and
hands out `NewEvent`s built with the real payload models. It is deterministic per project:
replaying it over a project's events read from disk gives a story that goes on from there.

`ensure_repo(size)` builds (once, cached under /tmp/orch-bench-status/<size>) a normal git
repository holding such a log: the files serialized with the real serializer, committed with
`git fast-import` in batches of 5,000 files (the approach of bench/git_append.py), checked
out, the index refreshed, `git status` clean.
"""

from __future__ import annotations

import itertools
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from git_append import git  # noqa: E402  (bench/ is on sys.path: scripts run from it)

from orchestrator.adapters.eventparse import event_path, serialize  # noqa: E402
from orchestrator.core import events as ev  # noqa: E402
from orchestrator.core.fold import apply_event  # noqa: E402
from orchestrator.core.state import ProjectState  # noqa: E402
from orchestrator.runtime.log import commit_message  # noqa: E402
from orchestrator.runtime.workspace import Workspace  # noqa: E402

# Bump when the generated logs change: cached repositories of another version are rebuilt.
VERSION = f"status-log-v2-schema{ev.SCHEMA_VERSION}"
CACHE_ROOT = Path("/tmp/orch-bench-status")
MARKER = "orch-bench-version"  # under .git/
FILES_PER_COMMIT = 5_000
RESULTS = Path(__file__).resolve().parent / "results"

# size label -> projects (id, events); 100k: 100 projects of 1,000 events each.
LAYOUTS: dict[str, list[tuple[str, int]]] = {
    "1k": [("solo", 1_000)],
    "10k": [("alpha", 5_000), ("beta", 5_000)],
    "100k": [(f"proj-{i:03d}", 1_000) for i in range(100)],
}

SQUADS = ("backend", "web", "infra", "data", "mobile")
FEATURES = (
    "exposes a REST API to create, read, update and delete the main records",
    "moves items through the statuses todo, doing and done and refuses any other value",
    "signs users in with email and password and issues a token valid for 12 hours",
    "lists the items of one member, newest first, paginated by 50",
    "records every change in an activity history returned newest first",
    "shows a board with one column per status and lets a user drag items across",
    "filters the board by assignee and by due date without reloading the page",
    "exports a project's items as CSV with one row per item and UTF-8 headers",
    "sends a daily digest email to every member with their open items",
    "answers 95% of API calls under 200 ms for 50 concurrent users",
    "stores passwords hashed with a slow, salted hash and never logs tokens",
    "is described as code and deploys with one command behind a health check",
)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE_TIME = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

Step = Callable[[], tuple[ev.NewEvent, Callable[[str], None]]]


def set_git_identity() -> None:
    """Give git an author and committer in this process (and its children) if none is set."""
    for key, value in (("GIT_AUTHOR_NAME", "orch bench"), ("GIT_AUTHOR_EMAIL", "bench@localhost"),
                       ("GIT_COMMITTER_NAME", "orch bench"),
                       ("GIT_COMMITTER_EMAIL", "bench@localhost")):
        os.environ.setdefault(key, value)


def _cpu_now() -> tuple[float, float, float]:
    """(wall clock, busy cpu seconds of the whole machine, cpu seconds of us and our children)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    busy = (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")  # not idle/iowait
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.time(), busy, me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _io_pressure() -> float | None:
    """Share of the last 60 s some task waited on I/O (Linux PSI), in percent; None if unknown."""
    try:
        with open("/proc/pressure/io") as fh:
            return float(fh.readline().split()[2].partition("=")[2])
    except (OSError, IndexError, ValueError):
        return None


def machine() -> dict[str, Any]:
    """Who ran the benchmark where; starts counting the cpu time other processes take."""
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "git": version.strip(), "platform": platform.platform(),
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "io_pressure_avg60_start": _io_pressure(), "_cpu": _cpu_now()}


def load_note(info: dict[str, Any]) -> str:
    """How much cpu other processes took while the benchmark ran (they inflate the figures)."""
    wall0, busy0, mine0 = info.pop("_cpu")
    wall1, busy1, mine1 = _cpu_now()
    other = max(0.0, (busy1 - busy0) - (mine1 - mine0))
    share = other / max(1e-9, (wall1 - wall0) * (os.cpu_count() or 1))
    info.update(loadavg_end=[round(x, 2) for x in os.getloadavg()],
                io_pressure_avg60_end=_io_pressure(),
                other_cpu_s=round(other, 1), other_cpu_share=round(share, 3))
    text = (f"other processes used {other:.1f} cpu-s ({share:.0%} of the machine) during the "
            f"run's {wall1 - wall0:.0f} s; I/O pressure (PSI some avg60) "
            f"{info['io_pressure_avg60_start']}% at start, {info['io_pressure_avg60_end']}% at end")
    return ("note: " + text + ": figures may be inflated") if share > 0.05 else text


def seed_of(project: str) -> int:
    return zlib.crc32(project.encode())


@dataclass
class _Task:
    id: str
    module: str
    feature: str
    requirement: str
    fix_for: str = ""          # the block this task fixes
    blocked_task: _Task | None = None
    attempt: int = 1
    next: str = "task.started"
    assigned_id: str = ""
    last_id: str = ""
    blocked_by: str = ""


@dataclass
class _Module:
    name: str
    planned: int               # tasks to create this round (fix tasks come on top)
    created: int = 0
    planned_id: str = ""
    closing: bool = False
    done: bool = False
    failed: bool = False
    delivered: list[str] = field(default_factory=list)


class Story:
    """One project's plausible flow, one event at a time: `next()`, then `record(event)`."""

    def __init__(self, project: str, seed: int | None = None) -> None:
        self.project = project
        self.rng = random.Random(seed_of(project) if seed is None else seed)
        rng = self.rng
        self.squads = rng.sample(SQUADS, rng.choice((2, 3, 3)))
        self.request_id = f"spec-{rng.getrandbits(48):012x}"
        self.round = 1
        self.modules: dict[str, _Module] = {}
        self.tasks: list[_Task] = []        # not done yet (blocked ones included)
        self.numbers = itertools.count(1)
        self.steps = 0
        self.queue: deque[Step] = deque()
        self.later: list[tuple[int, Step]] = []
        self.ids: dict[str, str] = {}
        self.requirements = [f"FR-{i + 1}" for i in range(rng.randint(6, 10))]
        self._on: Callable[[str], None] | None = None
        self.queue.extend(self._setup())

    @property
    def setup_events(self) -> int:
        """How many events come before the first task (created ... module.planned)."""
        return 5 + len(self.squads)

    def next(self) -> ev.NewEvent:
        """The next event of the story (its causation points at events already recorded)."""
        if self._on is not None:
            raise RuntimeError("record() the previous event before asking for the next one")
        self.steps += 1
        new, self._on = self._pick()()
        return new

    def record(self, event: ev.Event) -> None:
        """Tell the story the id the previous event got."""
        on, self._on = self._on, None
        if on is None:
            raise RuntimeError("nothing to record")
        on(event.id)

    # -- helpers -----------------------------------------------------------------------------

    def _new(self, payload: ev.Payload, actor: str, cause: str | None,
             links: tuple[tuple[str, str], ...] = (), usage: bool = True) -> ev.NewEvent:
        rng = self.rng
        return ev.NewEvent(
            payload=payload, actor=actor, causation_id=cause or None,
            links=tuple(ev.Link(kind=k, ref=r) for k, r in links),
            usage=ev.Usage(model="gpt-4.1-mini", prompt_tokens=rng.randint(400, 2500),
                           completion_tokens=rng.randint(80, 2000),
                           cost_usd=round(rng.uniform(0.0005, 0.02), 6),
                           latency_ms=rng.randint(700, 9000),
                           prompt_hash=f"{rng.getrandbits(64):016x}") if usage else None)

    def _doc(self, name: str) -> str:
        return f"project/{self.project}/docs/{name}"

    def _set(self, key: str) -> Callable[[str], None]:
        return lambda eid: self.ids.__setitem__(key, eid)

    def _squad_plans(self) -> list[ev.SquadPlan]:
        plans = []
        for i, sq in enumerate(self.squads):
            reqs = self.requirements[i::len(self.squads)]
            scope = f"The {sq} squad delivers {', '.join(reqs)}: " + "; ".join(
                f"{r} {FEATURES[(int(r[3:]) + i) % len(FEATURES)]}" for r in reqs)
            plans.append(ev.SquadPlan(name=sq, scope=scope, requirements=reqs,
                                      depends_on=[self.squads[0]] if i else []))
        return plans

    # -- the flow ----------------------------------------------------------------------------

    def _setup(self) -> list[Step]:
        rng, p = self.rng, self.project
        title = f"{p.capitalize()}: {rng.choice(FEATURES)}"
        created = ev.ProjectCreated(spec_path=f"specs/{p}.md",
                                    spec_commit=f"{rng.getrandbits(160):040x}", title=title[:80],
                                    author="Dana Reyes <dana@example.com>")
        details = [ev.RequirementRef(id=r, area=self.squads[i % len(self.squads)],
                                     text=f"The system {FEATURES[i % len(FEATURES)]}.")
                   for i, r in enumerate(self.requirements)]
        plans = self._squad_plans()
        steps: list[Step] = [
            lambda: (self._new(created, "system", None, usage=False), self._set("created")),
            lambda: (self._new(ev.SpecReviewed(
                summary=f"{title}. {len(details)} requirements across {', '.join(self.squads)}.",
                requirements=self.requirements, details=details, doc=self._doc("spec-review.md")),
                "cto", self.ids["created"], (("doc", self._doc("spec-review.md")),)),
                self._set("reviewed")),
            lambda: (self._new(ev.CtoEngineerRequest(
                round=1, brief=_brief("Propose the squads that will build this spec", p, "",
                                      details[0].text, []),
                questions=[f"{r}: what measurable target makes it testable?"
                           for r in self.requirements[:2]]),
                "cto", self.ids["created"]), self._set("asked")),
            lambda: (self._new(ev.EngineerCtoResponse(
                round=1, squads=plans, answers=["Each squad's QA checks its targets."],
                proposal=self._doc("proposal-round1.md")), "engineer", self.ids["asked"],
                (("doc", self._doc("proposal-round1.md")),)), self._set("proposed")),
            lambda: (self._new(ev.CharterCreated(charter=self._doc("charter.md"), squads=plans),
                               "cto", self.ids["proposed"], (("doc", self._doc("charter.md")),)),
                     self._set("charter")),
        ]
        return steps + [self._plan_step(plan, "charter") for plan in plans]

    def _plan_step(self, plan: ev.SquadPlan, cause_key: str) -> Step:
        def step() -> tuple[ev.NewEvent, Callable[[str], None]]:
            module = _Module(plan.name, planned=self.rng.randint(6, 14))

            def on(eid: str) -> None:
                module.planned_id = eid
                self.modules[plan.name] = module

            payload = ev.ModulePlanned(module=plan.name, scope=plan.scope,
                                       depends_on=plan.depends_on, requirements=plan.requirements)
            return self._new(payload, "cto", self.ids[cause_key], usage=False), on
        return step

    def _pick(self) -> Step:
        if self.queue:
            return self.queue.popleft()
        for item in self.later:
            if item[0] <= self.steps:
                self.later.remove(item)
                return item[1]
        active = [t for t in self.tasks if not t.blocked_by]
        openable = [m for m in self.modules.values() if m.created < m.planned]
        if openable and (not active or (len(active) < 6 and self.rng.random() < 0.35)):
            module = self.rng.choice(openable)
            return lambda: self._assign_new(module)
        if not active:
            raise RuntimeError(f"the story of {self.project} has nothing left to do")
        task = self.rng.choice(active)
        return lambda: self._advance(task)

    def _assign_new(self, module: _Module) -> tuple[ev.NewEvent, Callable[[str], None]]:
        module.created += 1
        sq = module.name
        number = module.created
        task_id = f"{sq}-{number}" if self.round == 1 else f"{sq}-r{self.round}-{number}"
        requirement = self.rng.choice(self.requirements)
        feature = self.rng.choice(FEATURES)
        task = _Task(task_id, sq, feature, requirement)
        return self._assigned(task, f"pm.{sq}", module.planned_id, "new")

    def _assigned(self, task: _Task, actor: str, cause: str, reason: str,
                  fixes_block: str = "") -> tuple[ev.NewEvent, Callable[[str], None]]:
        p, sq = self.project, task.module
        files = _files(p, sq, task.feature)
        payload = ev.TaskAssigned(
            task_id=task.id, module=sq if reason in ("new", "fix") else "",
            title=f"The system {task.feature}"[:70] if reason in ("new", "fix") else "",
            requirements=[task.requirement] if reason in ("new", "fix") else [],
            reason=reason, brief=_brief(f"The system {task.feature}", p, sq, task.feature, files),
            fixes_block=fixes_block, expected_files=files if reason in ("new", "fix") else [],
            findings=[f"{task.requirement}: no test covers '{task.feature[:40]}'."]
            if reason == "rework" else [])

        def on(eid: str) -> None:
            task.assigned_id = task.last_id = eid
            task.next = "task.started"
            task.blocked_by = ""
            if reason in ("new", "fix"):
                self.tasks.append(task)
            elif reason == "rework":
                task.attempt += 1

        links = (("doc", f"project/{p}/docs/backlog-{sq}.md"),) if reason == "new" else ()
        return self._new(payload, actor, cause, links), on

    def _advance(self, t: _Task) -> tuple[ev.NewEvent, Callable[[str], None]]:
        rng, sq, p = self.rng, t.module, self.project
        roll = rng.random()
        if t.next in ("task.started", "task.completed") and not t.fix_for and roll < 0.015:
            others = [m for m in self.modules.values() if m.name != sq and not m.closing]
            if others:
                return self._block(t, rng.choice(others))
        if t.next == "task.completed" and 0.015 <= roll < 0.022:
            return self._stale(t)
        if t.next != "task.started" and 0.022 <= roll < 0.03 and len(self.squads) > 1:
            return self._dependency(t)

        def moved(next_: str) -> Callable[[str], None]:
            def on(eid: str) -> None:
                t.last_id, t.next = eid, next_
            return on

        if t.next == "task.started":
            payload: ev.Payload = ev.TaskStarted(task_id=t.id, worker=f"vm-{rng.getrandbits(32):08x}")
            return self._new(payload, f"dev.{sq}", t.assigned_id, usage=False), moved(
                "task.completed")
        if t.next == "task.completed":
            files = _files(p, sq, t.feature)
            result = (f"[EXPECTED RETURN RESPONSE]\nBuilt {t.id} ({t.feature}):\n- "
                      f"{t.requirement}: {files[0]}: {rng.randint(3, 9)} functions; {files[1]}: "
                      f"{rng.randint(3, 12)} pytest tests\n\n[ANY OTHER ADDITIONAL INFORMATION]\n"
                      f"2 file(s) written; each names {t.requirement}.\n")
            payload = ev.TaskCompleted(task_id=t.id, result=result, artifacts=files)
            return self._new(payload, f"dev.{sq}", t.assigned_id,
                             tuple(("artifact", f) for f in files)), moved("qa.requested")
        if t.next == "qa.requested":
            return self._new(ev.QaRequested(task_id=t.id), f"monitor.{sq}", t.last_id,
                             usage=False), moved("qa.verdict")
        report = f"project/{p}/{sq}/qa/{t.id}-attempt{t.attempt}.md"
        if t.next == "qa.verdict":
            if rng.random() < 0.2 and not (t.fix_for and t.attempt >= 3):
                payload = ev.QaFailed(task_id=t.id, report=report, findings=[
                    f"{t.requirement}: no test covers '{t.feature}'.",
                    f"{t.requirement}: {t.id} does not reject invalid input."][:rng.randint(1, 2)])
                return self._new(payload, f"qa.{sq}", t.last_id, (("report", report),)), moved(
                    "rework" if t.attempt < 3 else "exhausted")
            payload = ev.QaPassed(task_id=t.id, report=report)
            return self._new(payload, f"qa.{sq}", t.last_id, (("report", report),)), (
                lambda eid: self._task_done(t, eid, failed=False))
        if t.next == "rework":
            return self._assigned(t, f"monitor.{sq}", t.last_id, "rework")
        if t.next == "exhausted":
            payload = ev.MonitorAlert(
                kind="rework_exhausted", severity="error", task_id=t.id, module=sq,
                message=f"{t.id} failed QA 3 times (max_qa_rework 2); {sq} will not be deployed",
                notify=[f"pm.{sq}"])
            return self._new(payload, f"monitor.{sq}", t.last_id, usage=False), (
                lambda eid: self._task_done(t, eid, failed=True))
        raise RuntimeError(f"task {t.id} in unknown step {t.next}")

    def _block(self, t: _Task, other: _Module) -> tuple[ev.NewEvent, Callable[[str], None]]:
        sq = t.module
        block_id = f"block-{t.id}-{next(self.numbers)}"
        payload = ev.BlockReported(
            block_id=block_id, task_id=t.id, reported_by=sq, responsible_squad=other.name,
            description=f"{t.id} cannot be built without the API contract of {other.name}: "
                        "the names, data shapes and error cases it must use.")

        def on(eid: str) -> None:
            t.blocked_by, t.last_id = block_id, eid
            fix = _Task(f"{other.name}-fix-{next(self.numbers)}", other.name,
                        "publishes the API contract other squads build on", t.requirement,
                        fix_for=block_id, blocked_task=t)
            self.queue.appendleft(lambda: self._assigned(fix, f"pm.{other.name}", eid, "fix",
                                                         fixes_block=block_id))

        return self._new(payload, f"pm.{sq}", t.assigned_id), on

    def _stale(self, t: _Task) -> tuple[ev.NewEvent, Callable[[str], None]]:
        sq = t.module
        payload = ev.MonitorAlert(kind="stale_claim", severity="warning", task_id=t.id, module=sq,
                                  message=f"{t.id}: the claim's lease of 600 s ran out")

        def on(eid: str) -> None:
            t.last_id = eid
            self.queue.appendleft(lambda: self._assigned(t, f"pm.{sq}", eid, "reactivated"))

        return self._new(payload, f"monitor.{sq}", t.last_id, usage=False), on

    def _dependency(self, t: _Task) -> tuple[ev.NewEvent, Callable[[str], None]]:
        sq = t.module
        dep_id = f"dep-{next(self.numbers)}"
        to = self.rng.choice([s for s in self.squads if s != sq])
        payload = ev.DependencyRequest(dependency_id=dep_id, from_squad=sq, to_squad=to,
                                       task_id=t.id, need=f"the data shapes {to} returns for "
                                                         f"{t.requirement}")

        def on(eid: str) -> None:
            answer = ev.DependencyFulfilled(
                dependency_id=dep_id, answer=f"See the {to} contract in the charter.",
                artifacts=[f"project/{self.project}/{to}/docs/contract.md"])
            self.later.append((self.steps + self.rng.randint(2, 40),
                               lambda: (self._new(answer, "cto", eid), lambda _: None)))

        return self._new(payload, f"pm.{sq}", t.assigned_id), on

    def _task_done(self, t: _Task, eid: str, failed: bool) -> None:
        t.last_id = eid
        self.tasks.remove(t)
        module = self.modules[t.module]
        module.failed = module.failed or failed
        if not failed:
            module.delivered.append(t.id)
        blocked = t.blocked_task
        if t.fix_for and blocked is not None:
            resolved = ev.BlockResolved(block_id=t.fix_for, fix_task_id=t.id,
                                        resolution=f"{t.id} passed QA")

            def on_resolved(rid: str) -> None:
                self.queue.appendleft(lambda: self._assigned(
                    blocked, f"pm.{blocked.module}", rid, "reactivated"))

            self.queue.append(lambda: (self._new(resolved, "cto", eid, usage=False),
                                       on_resolved))
        if module.created >= module.planned and not any(
                x.module == module.name for x in self.tasks):
            module.closing = True
            self._close_module(module, eid)

    def _close_module(self, m: _Module, cause: str) -> None:
        sq, p = m.name, self.project
        last = {"id": cause}

        def keep(eid: str) -> None:
            last["id"] = eid

        report = self._doc(f"squad-{sq}-round{self.round}-report.md")
        if not m.failed:
            bundle = f"project/{p}/{sq}/release/manifest.json"
            smoke = [ev.SmokeTest(name=f"artifact {t}", passed=True,
                                  detail=f"{self.rng.randint(500, 4000)} bytes")
                     for t in m.delivered[:8]] + [
                ev.SmokeTest(name="health check", passed=True, detail="the bundle answers")]
            self.queue.append(lambda: (self._new(ev.DevopsRequested(module=sq), f"monitor.{sq}",
                                                 last["id"], usage=False), keep))
            self.queue.append(lambda: (self._new(
                ev.DevopsDeployed(module=sq, bundle=bundle, smoke_tests=smoke), f"devops.{sq}",
                last["id"], (("artifact", bundle),)), keep))

        def completed(eid: str) -> None:
            m.done = True
            if all(x.done for x in self.modules.values()):
                self._complete_round(eid)

        outcome = "failed" if m.failed else "delivered"
        self.queue.append(lambda: (self._new(
            ev.ModuleCompleted(module=sq, report=report, outcome=outcome),
            f"pm.{sq}", last["id"], (("report", report),)), completed))

    def _complete_round(self, cause: str) -> None:
        delivered = sorted(m.name for m in self.modules.values() if not m.failed)
        failed = sorted(m.name for m in self.modules.values() if m.failed)
        report = self._doc(f"final-report-round{self.round}.md")
        done = ev.ProjectCompleted(
            report=report, delivered=delivered, failed=failed,
            summary=f"Project {self.project}: {len(delivered)} squad(s) delivered, "
                    f"{len(failed)} failed.")
        self.queue.append(lambda: (self._new(done, "cto", cause, (("doc", report),)),
                                   self._set("completed")))
        ask = ev.ProjectChangesRequested(
            message=f"Round {self.round + 1}: also {self.rng.choice(FEATURES)}.")

        def on_changes(eid: str) -> None:
            self.round += 1
            self.ids["changes"] = eid
            for plan in self._squad_plans():
                self.queue.append(self._plan_step(plan, "changes"))

        self.queue.append(lambda: (self._new(ask, "spec", self.ids["completed"], usage=False),
                                   on_changes))


def _files(project: str, squad: str, feature: str) -> list[str]:
    slug = "_".join(w.lower() for w in feature.split() if w.isalpha() and len(w) > 3)[:40]
    return [f"project/{project}/{squad}/src/{slug}.py",
            f"project/{project}/{squad}/tests/test_{slug}.py"]


def _brief(task: str, project: str, squad: str, feature: str, files: list[str]) -> str:
    expected = "".join(f"- {f}\n" for f in files)
    return (f"[TASK]\n{task}\n\nImplement: the system {feature}. Write a small implementation "
            f"with docstrings and pytest tests; name the requirement in every file.\n\n"
            f"[RELEVANT COMPLETE CONTEXT]\n## Facts\nproject: {project}\nsquad: {squad}\n\n"
            f"## Requirements\n- The system {feature}.\n\n[EXPECTED OUTPUT FILES]\n{expected}\n"
            f"[EXPECTED RETURN]\nThe files written, and what each requirement got.\n")


def _ulid(ms: int, rng: random.Random) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def project_events(project: str, count: int, start: datetime) -> Iterator[ev.Event]:
    """`count` events of one project's story, as the writer would have numbered them; each is
    folded on the way and a refused one stops the build (the log must have no findings)."""
    story = Story(project)
    rng = random.Random(seed_of(project) ^ 0x5EED)  # times and ids: not the story's own rng
    state = ProjectState(id=project)
    at = start
    for seq in range(1, count + 1):
        new = story.next()
        at += timedelta(seconds=rng.uniform(2, 240))
        event = ev.Event(id=_ulid(int(at.timestamp() * 1000), rng), seq=seq, type=new.type,
                         project=project, request_id=new.request_id or story.request_id,
                         causation_id=new.causation_id, actor=new.actor, at=at,
                         payload=new.payload, links=new.links, usage=new.usage)
        if not apply_event(state, event):
            raise RuntimeError(f"generated event refused: {state.findings[-1].reason}")
        story.record(event)
        yield event


def replay(story: Story, events: list[ev.Event]) -> None:
    """Bring a fresh Story of a built project to where its log on disk ends."""
    for event in events:
        new = story.next()
        if new.type != event.type or new.payload.subject() != event.payload.subject():
            raise RuntimeError(f"the log of {story.project} is not this story's (seq {event.seq}:"
                               f" {event.type} on disk, {new.type} replayed): rebuild it")
        story.record(event)


def build_repo(path: Path, layout: list[tuple[str, int]]) -> None:
    """A checked-out repository (orch layout) holding the projects' events, index in sync."""
    shutil.rmtree(path, ignore_errors=True)
    ws, _ = Workspace.init(path)
    ws.repo.close()
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=path,
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    who = f"{os.environ['GIT_COMMITTER_NAME']} <{os.environ['GIT_COMMITTER_EMAIL']}>"
    first = True
    batch: list[ev.Event] = []
    blobs: list[bytes] = []

    def flush() -> None:
        nonlocal first
        message = commit_message(batch).encode()
        when = int(batch[-1].at.timestamp())
        head = [b"commit refs/heads/main\n",
                b"committer %s %d +0000\n" % (who.encode(), when),
                b"data %d\n%s\n" % (len(message), message)]
        if first:
            head.append(b"from refs/heads/main^0\n")
            first = False
        proc.stdin.write(b"".join(head + blobs))
        batch.clear()
        blobs.clear()

    for index, (project, count) in enumerate(layout):
        spec = f"# {project}\n\nA spec for the benchmark.\n".encode()
        blobs.append(b"M 100644 inline specs/%s.md\ndata %d\n%s\n" % (
            project.encode(), len(spec), spec))
        for event in project_events(project, count, BASE_TIME + timedelta(days=index)):
            data = serialize(event)
            blobs.append(b"M 100644 inline %s\ndata %d\n%s\n" % (
                event_path(event).encode(), len(data), data))
            batch.append(event)
            if len(batch) >= FILES_PER_COMMIT:
                flush()
    if batch:
        flush()
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    git(path, "reset", "-q", "--hard")
    # Files written in the same second as the index are "racily clean": git re-reads them on
    # every status. Let the clock move on, then write the index again with fresh stat data.
    time.sleep(1.1)
    git(path, "update-index", "-q", "--refresh", "--force-write-index")
    dirty = git(path, "status", "--porcelain", "--untracked-files=all").stdout
    if dirty:
        raise SystemExit(f"built repository is not clean:\n{dirty.decode()[:500]}")


def ensure_repo(size: str, rebuild: bool = False) -> tuple[Path, float | None]:
    """The cached repository of this size (built if missing, stale or asked); the build time."""
    path = CACHE_ROOT / size
    marker = path / ".git" / MARKER
    if not rebuild and marker.exists() and marker.read_text() == VERSION:
        return path, None
    total = sum(n for _, n in LAYOUTS[size])
    print(f"  building the {size} repository ({total} events) in {path} ...", flush=True)
    t0 = time.perf_counter()
    build_repo(path, LAYOUTS[size])
    marker.write_text(VERSION)
    took = time.perf_counter() - t0
    print(f"  built in {took:.1f} s", flush=True)
    return path, took


def copy_repo(src: Path, dst: Path) -> float:
    """An independent copy (`cp -a`, no shared files), its index refreshed; returns seconds."""
    t0 = time.perf_counter()
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    (dst / ".git" / MARKER).unlink(missing_ok=True)
    git(dst, "update-index", "-q", "--refresh")  # new inodes and ctimes: refresh once
    return time.perf_counter() - t0
