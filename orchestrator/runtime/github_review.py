"""Review through GitHub pull requests (review.host: github): one draft pull request per task
waiting for review, QA's report as a COMMENT review, and people's merges, approvals, change
requests and closes brought into the log. Every run reconciles: it reads the pull requests
and the log, and does what is missing, so a dropped webhook loses nothing."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orchestrator.adapters.github import GitHubError, GitHubHost
from orchestrator.core import events as ev
from orchestrator.core import pull_events as pe
from orchestrator.core import pull_requests as pr
from orchestrator.core import review_events as rv
from orchestrator.core.config import Config
from orchestrator.core.state import ProjectState, Task, TaskStatus
from orchestrator.errors import GitError, UsageError
from orchestrator.runtime import review
from orchestrator.runtime.workspace import CONFIG_PATH, Workspace

BRANCH_PREFIX = f"{review.BRANCH_PREFIX}/"
MAX_COMMENT_CHARS = 60_000
"""GitHub takes comments up to 65,536 characters."""
_REVIEW_ID = re.compile(r"#pullrequestreview-(\d+)$")


@dataclass
class SyncReport:
    """What one sync did, one line each, for the person reading the job's log."""

    opened: list[str] = field(default_factory=list)
    commented: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    """Pull requests GitHub would not open (a head not on GitHub, say): the other tasks went
    on; the command exits non-zero naming them."""

    def lines(self) -> list[str]:
        return [*self.ignored, *self.pushed, *self.opened, *self.commented, *self.recorded,
                *self.queued, *self.failed]


def seen_reviews(events: list[ev.Event]) -> set[int]:
    """Review ids already recorded: a review becomes an event once, however many runs."""
    out = set()
    for e in events:
        if isinstance(e.payload, rv.ReviewApproved | rv.ReviewRejected) and (
                e.payload.source == "github"):
            match = _REVIEW_ID.search(e.payload.ref)
            if match:
                out.add(int(match.group(1)))
    return out


def sync(ws: Workspace, host: GitHubHost, config: Config, *, only_pull: int | None = None,
         remote: str | None = None) -> SyncReport:
    """One pass over every project (or the one pull request a webhook named)."""
    report = SyncReport()
    reviews = _Reviews(host)
    own = host.own_login()
    open_pulls = host.pulls(state="open")
    for project, state in ws.reader.states().items():
        events = ws.reader.events(project)
        waiting = [t for t in state.tasks.values()
                   if t.status == TaskStatus.IN_REVIEW and t.review_event
                   and not t.approved_event]
        if not waiting:
            continue
        by_id = {e.id: e for e in events}
        seen = seen_reviews(events)
        for task in waiting:
            known = state.pulls.get(task.id)
            if known is None or (only_pull is not None and known["number"] != only_pull):
                continue
            since = by_id[task.review_event].at if task.review_event in by_id else None
            _ingest(ws, reviews, own, project, task, int(known["number"]), since, seen,
                    report)
        if only_pull is not None:
            continue
        state = ws.reader.states([project])[project]
        _open_pulls(ws, reviews, config, project, state, open_pulls, remote, report)
    return report


class _Reviews:
    """Each pull request's reviews read once per sync (ingesting and the QA comment's check
    both need them); posting a comment forgets what was read of that pull request."""

    def __init__(self, host: GitHubHost) -> None:
        self.host = host
        self._read: dict[int, list[pr.PullReview]] = {}

    def of(self, number: int) -> list[pr.PullReview]:
        if number not in self._read:
            self._read[number] = self.host.reviews(number)
        return self._read[number]

    def comment(self, number: int, body: str) -> None:
        self.host.comment_review(number, body)
        self._read.pop(number, None)


def _ingest(ws: Workspace, read: _Reviews, own: str, project: str, task: Task, number: int,
            since: datetime | None, seen: set[int], report: SyncReport) -> None:
    pull = read.host.pull(number)
    reviews = read.of(number) if pull.state == "open" else []
    permissions = {r.author.login: read.host.permission(r.author.login) for r in reviews
                   if r.state in ("APPROVED", "CHANGES_REQUESTED")
                   and pr.needs_permission_check(r.author, own)}

    def counts(person: pr.Person) -> bool:
        return pr.trusted(person, own, permissions.get(person.login))

    for r in reviews:
        if r.state in ("APPROVED", "CHANGES_REQUESTED") and not counts(r.author) and (
                r.id not in seen):
            why = ("a bot" if pr.is_bot(r.author) else "orch itself"
                   if not pr.needs_permission_check(r.author, own)
                   else f"no write access ({permissions.get(r.author.login)})")
            report.ignored.append(f"{project}/{task.id}: review {r.id} by {r.author.login} "
                                  f"ignored: {why}")
    decision = pr.decide(pull, reviews, counts, since, seen)
    if decision is None:
        return
    if isinstance(decision, pr.Approve):
        done = review.approve(
            ws, project, task.id, by=decision.by[:200], source="github",
            ref=decision.url[:500], merged=decision.merged,
            note=f"merged on GitHub: {pull.url}"[:5000] if decision.merged else "")
        what = ("merged on GitHub" if decision.merged else
                "approved" + (", merged" if done.merged else "")
                + (f", conflicts in {', '.join(done.conflicts)}: back to its Dev"
                   if done.conflicts else ""))
    elif isinstance(decision, pr.Reject):
        review.reject(ws, project, task.id, list(decision.findings), by=decision.by[:200],
                      source="github", ref=decision.url[:500])
        what = f"changes requested: one rework with {len(decision.findings)} findings"
    else:
        review.abandon(ws, project, task.id, source="github", ref=decision.url[:500],
                       reason=f"pull request #{number} was closed without a merge")
        what = "closed unmerged: the task is abandoned (alert raised)"
    report.recorded.append(f"{project}/{task.id}: #{number} {what}")


def _open_pulls(ws: Workspace, read: _Reviews, config: Config, project: str,
                state: ProjectState, open_pulls: list[pr.PullState], remote: str | None,
                report: SyncReport) -> None:
    host = read.host
    waiting = sorted((t for t in state.tasks.values()
                      if t.status == TaskStatus.IN_REVIEW and t.review_event
                      and not t.approved_event),
                     key=lambda t: t.review_event)  # ULIDs: the order they started waiting
    mine = [p for p in open_pulls if p.head.startswith(f"{BRANCH_PREFIX}{project}/")]
    open_heads = {p.head: p for p in mine}
    with_pull = {t.id for t in waiting if t.id in state.pulls}
    plan = pr.plan_openings([t.id for t in waiting], with_pull, len(mine),
                            config.review.max_open_prs)
    base = ws.repo.branch()
    for task in waiting:
        branch = task.branch or review.task_branch(project, task.id)
        if task.id in plan.queued:
            report.queued.append(f"{project}/{task.id}: queued (the project has "
                                 f"{len(mine)} open pull requests, the cap is "
                                 f"{config.review.max_open_prs})")
            continue
        if remote is not None and _push(ws, remote, branch):
            report.pushed.append(f"{project}/{task.id}: {branch} is on {remote}")
        if task.id in plan.open_now:
            pull = open_heads.get(branch)
            reused = pull is not None
            if pull is None:
                title = " ".join(f"[orch] {project}/{task.id}: {task.title}".split())[:250]
                events_url = f"{host.html_url}/tree/{base}/.orchestrator/events/{project}"
                try:
                    pull = host.open_draft(branch, base, title, pr.pull_body(
                        task.brief, events_url, project, task.id))
                except GitHubError as exc:
                    report.failed.append(f"{project}/{task.id}: no pull request for {branch}: "
                                         f"{exc}")
                    continue
                mine.append(pull)
            ws.log.append(project, [ev.NewEvent(
                payload=pe.PullOpened(task_id=task.id, number=pull.number, url=pull.url[:500],
                                      branch=branch, reused=reused),
                actor="monitor", causation_id=task.review_event,
                links=(ev.Link(kind="pr", ref=pull.url[:500]),))])
            report.opened.append(f"{project}/{task.id}: #{pull.number} {pull.url}"
                                 + (" (reused)" if reused else ""))
            number = pull.number
        elif task.id in state.pulls:
            number = int(state.pulls[task.id]["number"])
        else:
            continue
        _comment_qa(ws, read, project, task, number, report)


def _comment_qa(ws: Workspace, read: _Reviews, project: str, task: Task, number: int,
                report: SyncReport) -> None:
    """QA's latest report on the task as a COMMENT review, once (the marker says so)."""
    qa = next((e for e in reversed(ws.reader.events(project))
               if isinstance(e.payload, ev.QaPassed) and e.payload.task_id == task.id), None)
    if qa is None or not isinstance(qa.payload, ev.QaPassed):
        return
    marker = pr.QA_MARKER.format(qa_event=qa.id)
    if any(marker in r.body for r in read.of(number)):
        return
    checks = "\n".join(f"- {c.name}: {c.status}" + (f" (`{c.command}`)" if c.command else "")
                       for c in qa.payload.checks)
    body = _report_text(ws, qa.payload.report, task) + (
        f"\n\nChecks:\n{checks}" if checks else "")
    read.comment(number, pr.qa_comment("passed", body, qa.id))
    report.commented.append(f"{project}/{task.id}: QA's report posted on #{number}")


def _report_text(ws: Workspace, report: str, task: Task) -> str:
    """QA's report is a file (on the main branch, or the task's): its text, bounded to what
    a comment holds; the path itself when neither has it."""
    if not report.startswith("project/"):
        return report
    for rev in (ws.repo.head(), task.head or None):
        if rev:
            found = dict(ws.repo.read_tree_files(rev, report)).get(report)
            if found is not None:
                text = found.decode("utf-8", "replace")
                cut = len(text) > MAX_COMMENT_CHARS
                return f"`{report}`\n\n" + text[:MAX_COMMENT_CHARS] + ("\n\n(cut)" if cut else "")
    return f"`{report}`"


def _push(ws: Workspace, remote: str, branch: str) -> bool:
    """Put the task's branch on the remote (its pull request needs it there); False when this
    clone does not have it (then the remote's copy, if any, is what the pull request shows)."""
    try:
        ws.repo.resolve(f"refs/heads/{branch}")
    except GitError:
        return False
    return ws.repo.push_branch(remote, branch).accepted


def sync_from_cli(ws: Workspace, event_path: str | None, repository: str | None,
                  push: bool, if_configured: bool = False) -> SyncReport:
    """`orch github sync`: the configuration checked, the webhook payload read (a bot's is
    ignored before any call), the host from the environment, then one sync."""
    from orchestrator.adapters.config_file import load_config
    from orchestrator.adapters.github import repository_from_remote

    config = load_config(ws.root)
    if config.review.host != "github" and if_configured:
        return SyncReport(ignored=[f"review.host is '{config.review.host}': nothing to sync"])
    if config.review.host != "github":
        raise UsageError(f"review.host is '{config.review.host}' in {CONFIG_PATH}; set "
                         "review: {mode: human, host: github} to review through pull requests")
    payload = _payload(event_path) if event_path else {}
    remote = ws.repo.remote()
    named = payload.get("repository")
    if repository is None and isinstance(named, dict) and isinstance(named.get("full_name"), str):
        repository = named["full_name"]  # the repository the webhook came from
    if repository is None and not os.environ.get("GITHUB_REPOSITORY") and remote:
        repository = repository_from_remote(ws.repo.config(f"remote.{remote}.url") or "")
    host = GitHubHost.from_environment(repository=repository)
    trigger = pr.trigger_of(payload)
    if not trigger.ignored and trigger.pull is not None:
        trigger = pr.trigger_of(payload, host.own_login())
    if trigger.ignored:
        return SyncReport(ignored=[f"ignored: {trigger.ignored}"])
    return sync(ws, host, config, only_pull=trigger.pull, remote=remote if push else None)


def _payload(path: str) -> dict[str, object]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the event payload {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"the event payload {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"the event payload {path} is not a JSON object")
    return data
