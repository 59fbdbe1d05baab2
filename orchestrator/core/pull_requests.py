"""Review on a code host, decided purely: a pull request, its reviews and who wrote them in;
what the log should record out (approved, rejected with findings, abandoned), and which
waiting tasks get a pull request now and which queue behind the cap."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
MAX_FINDING_CHARS = 4000
"""A finding is a person's words: kept whole up to this, then cut with a pointer to the
review (an event file has a size limit; the pull request keeps the rest)."""


@dataclass(frozen=True)
class Person:
    login: str
    kind: str = "User"
    """GitHub's `type`: User, Bot, Organization."""


@dataclass(frozen=True)
class LineComment:
    path: str
    line: int | None
    body: str


@dataclass(frozen=True)
class PullReview:
    id: int
    author: Person
    state: str
    """APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING."""
    body: str
    submitted_at: datetime | None
    url: str = ""
    comments: tuple[LineComment, ...] = ()


@dataclass(frozen=True)
class PullState:
    number: int
    head: str
    base: str
    state: str
    """open or closed."""
    merged: bool
    url: str
    draft: bool = False
    merged_by: Person | None = None


@dataclass(frozen=True)
class Approve:
    """A person approved (review_id set) or the pull request was merged on the host."""

    merged: bool
    by: str
    review_id: int | None = None
    url: str = ""


@dataclass(frozen=True)
class Reject:
    """One "request changes" review: every comment of it is a finding, one rework."""

    review_id: int
    by: str
    findings: tuple[str, ...]
    url: str = ""


@dataclass(frozen=True)
class Abandon:
    """Closed without a merge: the task ends, and a person is told."""

    url: str


Decision = Approve | Reject | Abandon


def is_bot(person: Person) -> bool:
    return person.kind == "Bot" or person.login.lower().endswith("[bot]")


def needs_permission_check(person: Person, own_login: str) -> bool:
    """Bots and orch itself are ignored without asking the host who they are."""
    return not is_bot(person) and person.login.lower() != own_login.lower()


def trusted(person: Person, own_login: str, permission: str | None) -> bool:
    """A review counts when a person (not a bot, not orch) with write access wrote it: so two
    bots, or orch and a bot, can never drive each other round."""
    return needs_permission_check(person, own_login) and permission in WRITE_PERMISSIONS


def review_findings(review: PullReview) -> tuple[str, ...]:
    """The review's body, then each line comment as `path:line: text`; empty texts are no
    finding."""
    out = []
    if review.body.strip():
        out.append(_bounded(review.body.strip(), review.url))
    for c in review.comments:
        if c.body.strip():
            where = f"{c.path}:{c.line}" if c.line is not None else c.path
            out.append(_bounded(f"{where}: {c.body.strip()}", review.url))
    if not out:  # a bare "request changes" still sends the task back, and says so
        out.append(f"changes requested by {review.author.login} without a comment"
                   + (f" ({review.url})" if review.url else ""))
    return tuple(out)


def _bounded(text: str, url: str) -> str:
    if len(text) <= MAX_FINDING_CHARS:
        return text
    return text[:MAX_FINDING_CHARS] + f" ... (cut; the whole comment: {url or 'the pull request'})"


def decide(pull: PullState, reviews: Sequence[PullReview], counts: Callable[[Person], bool],
           waiting_since: datetime | None, seen_reviews: Collection[int]) -> Decision | None:
    """What a pull request means for its task, if the task waits for review (waiting_since is
    when it started waiting; None: it does not wait, nothing to decide).

    Merged (squash and rebase merges too: the host's `merged`, never ancestry) is an approval;
    closed unmerged is abandoned. Else the latest decisive review that counts (`counts`: a
    person with write access), submitted since the task started waiting and not recorded
    before (`seen_reviews`: a review is recorded once, whatever the number of runs)."""
    if waiting_since is None:
        return None
    if pull.merged:
        by = pull.merged_by.login if pull.merged_by else ""
        return Approve(merged=True, by=by, url=pull.url)
    if pull.state == "closed":
        return Abandon(url=pull.url)
    since = waiting_since.replace(microsecond=0)  # the host counts whole seconds
    decisive = sorted(
        (r for r in reviews
         if r.state in ("APPROVED", "CHANGES_REQUESTED") and r.id not in seen_reviews
         and (r.submitted_at is None or r.submitted_at >= since) and counts(r.author)),
        key=lambda r: (r.submitted_at or since, r.id))
    if not decisive:
        return None
    last = decisive[-1]
    if last.state == "APPROVED":
        return Approve(merged=False, by=last.author.login, review_id=last.id, url=last.url)
    return Reject(review_id=last.id, by=last.author.login, findings=review_findings(last),
                  url=last.url)


@dataclass(frozen=True)
class Openings:
    """Which waiting tasks get a pull request now, and which wait for a free place."""

    open_now: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)


def plan_openings(waiting: Sequence[str], with_pull: Collection[str], open_count: int,
                  cap: int) -> Openings:
    """Tasks waiting for review without a pull request, in the order given, open one while
    the project's open pull requests stay within the cap; the rest queue."""
    free = max(cap - open_count, 0)
    needing = [t for t in waiting if t not in with_pull]
    return Openings(open_now=needing[:free], queued=needing[free:])


QA_MARKER = "<!-- orch:qa {qa_event} -->"


def qa_comment(verdict: str, report: str, qa_event: str) -> str:
    """QA's report as a review comment; the marker keeps a rerun from posting it twice."""
    head = f"**QA {verdict}.**"
    return f"{QA_MARKER.format(qa_event=qa_event)}\n{head}\n\n{report.strip() or '(no report)'}\n"


def pull_body(brief: str, events_url: str, project: str, task: str) -> str:
    """A task's pull request: its brief as the Dev got it, and where its events are."""
    text = brief.strip() or "[TASK]\n(no brief was recorded for this task)"
    return (f"{text}\n\n---\n"
            f"Task `{task}` of project `{project}`, opened by orch. Its events: {events_url} "
            f"(or `orch log {project}`). Approve or merge to accept it; \"Request changes\" "
            "sends it back to its Dev with every comment of that review; closing it unmerged "
            "ends the task.\n")


@dataclass(frozen=True)
class Trigger:
    """What a webhook payload asks of a sync: the one pull request it is about (None: every
    one), or why it is ignored."""

    pull: int | None = None
    ignored: str = ""


def trigger_of(payload: dict[str, object], own_login: str = "") -> Trigger:
    """A `pull_request` / `pull_request_review` payload narrows the sync to its pull request;
    one sent by a bot or by orch itself is ignored whole (so bots never loop); any other
    event (push, schedule, dispatch) syncs everything."""
    pull = payload.get("pull_request")
    if not isinstance(pull, dict):
        return Trigger()
    number = pull.get("number")
    head = pull.get("head")
    ref = head.get("ref") if isinstance(head, dict) else None
    if not isinstance(number, int) or not isinstance(ref, str):
        return Trigger(ignored="the payload names no pull request number and head branch")
    if not ref.startswith("orch/"):
        return Trigger(ignored=f"#{number} ({ref}) is not an orch task branch")
    for key in ("sender", "review"):
        actor = payload.get(key)
        user = actor.get("user") if key == "review" and isinstance(actor, dict) else actor
        if isinstance(user, dict) and isinstance(user.get("login"), str):
            person = Person(user["login"], str(user.get("type") or "User"))
            if is_bot(person) or (own_login and person.login.lower() == own_login.lower()):
                return Trigger(ignored=f"#{number}: sent by {person.login}, a bot or orch")
    return Trigger(pull=number)
