"""Who owns a reaction: claims, leases and the fence the fold puts on results.

Every reaction that calls a model is claimed first (a `reaction.claimed`, or for a Dev's task
the `task.started` that moves it). A result names its claim with a `claim` link; the fold
keeps it only when that claim is still the current one of its reaction, so a worker whose
lease ran out and was taken over, or whose claim lost a race, cannot land a result, whatever
order the files arrive in. Pure: times come from the events and from the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.state import Claim, ProjectState, TaskStatus

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def claim_key(actor: str, causation: str) -> str:
    """Actors never hold a space, so this names one reaction unambiguously."""
    return f"{actor} {causation}"


def expires_at(claim: Claim) -> datetime:
    return datetime.strptime(claim.at, TIME_FORMAT).replace(tzinfo=UTC) + timedelta(
        seconds=claim.lease_s)


def expired(claim: Claim, now: datetime) -> bool:
    return expires_at(claim) < now


def claim_refusal(state: ProjectState, key: str, worker: str, takeover_of: str,
                  at: datetime) -> str | None:
    """Why a claim of reaction `key` by `worker` at `at` cannot stand, or None."""
    current = state.claims.get(key)
    if current is None:
        return f"claim names '{takeover_of}', which is not a claim of it" if takeover_of \
            else None
    if current.done:
        return f"the reaction already has a result under claim {current.event_id}"
    if not takeover_of:
        return f"already claimed by {current.worker} (claim {current.event_id})"
    if takeover_of != current.event_id:
        return f"claim {takeover_of} is not the current one ({current.event_id})"
    if current.worker != worker and not expired(current, at):
        return (f"claim {current.event_id} of {current.worker} holds until "
                f"{expires_at(current).strftime(TIME_FORMAT)}")
    return None


def record_claim(state: ProjectState, key: str, event: ev.Event, worker: str,
                 lease_s: int) -> None:
    state.claims[key] = Claim(event_id=event.id, worker=worker,
                              at=event.at.strftime(TIME_FORMAT), lease_s=lease_s)
    state.claim_keys[event.id] = key


def claim_link(event: ev.Event | ev.NewEvent) -> str:
    return next((link.ref for link in event.links if link.kind == "claim"), "")


def fence_refusal(state: ProjectState, event: ev.Event) -> str | None:
    """Why a result must be kept out because of its claim, or None (results that name no
    claim are not fenced: decided reactions and logs older than claims have none)."""
    ref = claim_link(event)
    if not ref:
        return None
    key = state.claim_keys.get(ref)
    if key is None:
        return f"its claim {ref} is not in the log (it lost a race or was never pushed)"
    current = state.claims[key]
    if current.event_id != ref:
        return f"its claim {ref} was replaced by claim {current.event_id} of {current.worker}"
    return None


def mark_done(state: ProjectState, event: ev.Event) -> None:
    key = state.claim_keys.get(claim_link(event))
    if key is not None:
        state.claims[key].done = True


Action = Literal["claim", "resume", "take_over", "held", "done"]


@dataclass(frozen=True)
class ClaimPlan:
    """What a worker does about one reaction it could work on, and the claim it concerns."""

    action: Action
    claim: Claim | None = None


def plan_claim(state: ProjectState, actor: str, causation: str, worker: str,
               now: datetime) -> ClaimPlan:
    """Claim a free reaction, resume one's own, take over an expired one, leave a held one."""
    current = state.claims.get(claim_key(actor, causation))
    if current is None:
        return ClaimPlan("claim")
    if current.done:
        return ClaimPlan("done", current)
    if current.worker == worker:
        return ClaimPlan("resume", current)
    if expired(current, now):
        return ClaimPlan("take_over", current)
    return ClaimPlan("held", current)


def claim_events(state: ProjectState, r: Reaction, plan: ClaimPlan, worker: str,
                 lease_s: int) -> list[ev.NewEvent]:
    """The events that claim reaction r for this worker (plan: a new claim or a takeover):
    a Dev's task is claimed by starting it; any other reaction by `reaction.claimed`, and a
    takeover of an expired lease is on the record as the Monitor's stale-claim alert."""
    request = state.request_id or None
    if r.kind == "work" and state.tasks[r.subject].status == TaskStatus.ASSIGNED:
        start = ev.TaskStarted(task_id=r.subject, lease_s=lease_s, worker=worker)
        return [ev.NewEvent(payload=start, actor=r.actor, causation_id=r.causation_id,
                            request_id=request)]
    old = plan.claim
    claimed = ev.ReactionClaimed(worker=worker, lease_s=lease_s,
                                 takeover_of=old.event_id if old else "", kind=r.kind)
    events = [ev.NewEvent(payload=claimed, actor=r.actor, causation_id=r.causation_id,
                          request_id=request)]
    if old is not None:
        events.append(ev.NewEvent(payload=ev.MonitorAlert(
            kind="stale_claim", module=r.squad,
            message=f"claim of {old.worker} on {r.actor} {r.kind} expired "
                    f"after {old.lease_s}s; taken over by {worker}"),
            actor=f"monitor.{r.squad}" if r.squad else "monitor",
            causation_id=old.event_id, request_id=request))
    return events


def active_workers(states: list[ProjectState], worker: str, now: datetime) -> set[str]:
    """The workers seen claiming within their lease, this one included: who shares the work."""
    return {worker} | {c.worker for s in states for c in s.claims.values()
                       if not expired(c, now) and c.worker}


def preferred_worker(key: str, workers: set[str]) -> str:
    """The worker that claims reaction `key` first: highest rendezvous hash of (worker, key).
    Every worker computes the same answer from the same set, so peers claim different
    reactions (their claims survive each other's rebases) and the work spreads evenly; when
    a worker comes or goes only its own share moves."""
    return max(sorted(workers), key=lambda w: hashlib.sha256(f"{w} {key}".encode()).digest())


def held_by_others(state: ProjectState, worker: str, now: datetime) -> list[tuple[str, Claim]]:
    """Open claims of other workers that still hold: what a run that stops waits for."""
    return sorted(((k, c) for k, c in state.claims.items()
                   if not c.done and c.worker != worker and not expired(c, now)),
                  key=lambda kc: kc[1].at)
