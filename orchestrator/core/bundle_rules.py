"""The rules a plan's events meet before `orch apply` writes them (pure: events and states in,
verdicts out).

A bundle's events are checked twice. Against the log as it was when the plan began (its
base), every event must be a legitimate part of that plan: its causation a reaction pending
then or an earlier event of the bundle, every claim the bundle's own worker's, every result
under a claim of the bundle's own, and each event folding without a finding. What breaks a
rule there is forged or broken, and refuses the whole bundle. Against the log as it is now,
what another worker did or claimed since the plan began is dropped, with what depends on it
(a result whose claim was dropped, an event answering a dropped one), and the rest is kept.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from orchestrator.core import events as ev
from orchestrator.core.claims import claim_link
from orchestrator.core.flow import FlowSettings, pending_reactions
from orchestrator.core.fold import apply_event
from orchestrator.core.state import ProjectState

CLAIM_TYPES = ("reaction.claimed", "task.started")


class RuleBroken(Exception):
    """A bundle event breaks a rule: the message names the event and the rule."""


@dataclass
class ProjectVerdict:
    kept: list[ev.Event] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """`type id: reason` of each event dropped because the log moved since the plan."""
    already: int = 0
    """Events the log holds already (a bundle applied twice)."""
    state: ProjectState | None = None
    """The current state with the kept events folded in (the next bundle's starting point)."""


def where(event: ev.Event) -> str:
    return f"bundle event {event.id} ({event.type} by {event.actor})"


def reaction_key(event: ev.Event) -> tuple[str, str]:
    """Which reaction an event belongs to: a failure alert belongs to the reaction it ends."""
    payload = event.payload
    if isinstance(payload, ev.MonitorAlert) and payload.reaction_actor:
        return (payload.reaction_actor, event.causation_id or "")
    return (event.actor, event.causation_id or "")


def claim_worker(event: ev.Event) -> str | None:
    payload = event.payload
    if isinstance(payload, ev.ReactionClaimed | ev.TaskStarted):
        return payload.worker
    return None


def check_project(events: list[ev.Event], base: ProjectState, current: ProjectState,
                  logged: set[str], settings: FlowSettings, worker: str,
                  author_type: str = "") -> ProjectVerdict:
    """The verdict on one project's bundle events; raises RuleBroken on a forged or broken
    one. author_type is the one event type that may name no causation (what the spec's
    author asked this run for), or ''."""
    ordered = sorted(events, key=lambda e: (e.seq, e.id))
    settings = replace(settings, worker=worker)  # the work the plan's own claims hold
    _check_at_base(ordered, base, settings, worker, author_type)
    return _keep_against_now(ordered, current, logged, settings)


class _Pending:
    """The reactions a state is waiting for, computed again only when one is not found: an
    event of a log may become a reaction's causation through later events (a parent task's
    last event, once the bundle's subtasks pass)."""

    def __init__(self, state: ProjectState, settings: FlowSettings) -> None:
        self.state, self.settings = state, settings
        self.keys = {r.key for r in pending_reactions(state, settings)}

    def __contains__(self, key: object) -> bool:
        if key not in self.keys:
            self.keys = {r.key for r in pending_reactions(self.state, self.settings)}
        return key in self.keys


def _check_at_base(events: list[ev.Event], base: ProjectState, settings: FlowSettings,
                   worker: str, author_type: str) -> None:
    state = copy.deepcopy(base)
    pending = _Pending(state, settings)
    seen: set[tuple[str, str]] = set()
    ours: set[str] = set()
    takeovers: set[str] = set()
    seq = state.last_seq
    for event in events:
        at = where(event)
        cause = event.causation_id or ""
        if cause and cause not in ours:
            key = reaction_key(event)
            if cause in takeovers:
                pass  # the alert that a stale claim was taken over names that claim
            elif key not in seen and key not in pending:
                raise RuleBroken(f"{at}: its causation {cause} is not a reaction the log was "
                                 "waiting for when the plan began (done already, or never "
                                 "called for)")
            seen.add(key)
        elif not cause and event.type == author_type and event.actor == "spec":
            author_type = ""  # what the author asked for, once
        elif not cause and event.type != "project.created":
            raise RuleBroken(f"{at}: names no causation (only what the author asked this "
                             "run for may)")
        _check_claim(event, state, ours, worker, at)
        if isinstance(event.payload, ev.ReactionClaimed) and event.payload.takeover_of:
            takeovers.add(event.payload.takeover_of)
        seq += 1
        if not apply_event(state, event.model_copy(update={"seq": seq})):
            raise RuleBroken(f"{at}: {state.findings[-1].reason}")
        ours.add(event.id)


def _check_claim(event: ev.Event, state: ProjectState, ours: set[str], worker: str,
                 at: str) -> None:
    """Forged claims: a claim made for another worker, or a result under a claim that is
    neither the bundle's own nor this worker's current claim in the log."""
    claimant = claim_worker(event)
    if claimant is not None and claimant != worker:
        raise RuleBroken(f"{at}: forged claim: it claims for worker '{claimant}', but the "
                         f"bundle is worker '{worker}''s")
    ref = claim_link(event)
    if not ref or ref in ours:
        return
    key = state.claim_keys.get(ref)
    current = state.claims.get(key) if key is not None else None
    if current is None or current.event_id != ref or current.worker != worker:
        raise RuleBroken(f"{at}: forged claim: its claim {ref} is not one of the bundle's "
                         "own, nor the bundle's worker's current claim in the log")


def _keep_against_now(events: list[ev.Event], current: ProjectState, logged: set[str],
                      settings: FlowSettings) -> ProjectVerdict:
    verdict = ProjectVerdict()
    state = copy.deepcopy(current)
    pending = _Pending(state, settings)
    seen: set[tuple[str, str]] = set()
    ours: set[str] = set()
    dropped: set[str] = set()
    seq = state.last_seq
    for event in events:
        if event.id in logged:
            verdict.already += 1
            ours.add(event.id)
            continue
        cause = event.causation_id or ""
        ref = claim_link(event)
        reason = ""
        if cause in dropped or ref in dropped:
            reason = f"it answers {cause if cause in dropped else ref}, which was dropped"
        elif cause and cause not in ours and reaction_key(event) not in seen \
                and cause not in state.claim_keys and reaction_key(event) not in pending:
            reason = "another worker did this reaction since the plan began"
        else:
            seen.add(reaction_key(event))
            placed = event.model_copy(update={"seq": seq + 1})
            if apply_event(state, placed):
                seq += 1
                ours.add(event.id)
                verdict.kept.append(event)
                continue
            reason = f"{state.findings[-1].reason} (the log moved since the plan began)"
        dropped.add(event.id)
        verdict.dropped.append(f"{event.type} {event.id}: {reason}")
    verdict.state = state
    return verdict


def in_flight_claims(events: list[ev.Event]) -> set[str]:
    """Ids of the claims a plan made for work still in flight when it stopped: nothing of the
    plan answers them or comes of their reaction. A bundle leaves them out, so the next run's
    worker may claim that work at once instead of waiting out a lease nobody renews."""
    answered = {e.causation_id for e in events} | {claim_link(e) for e in events}
    ordered = sorted(events, key=lambda e: (e.seq, e.id))
    last_of_key: dict[tuple[str, str], int] = {}
    last_of_task: dict[str, int] = {}
    for i, event in enumerate(ordered):
        last_of_key[reaction_key(event)] = i
        task = getattr(event.payload, "task_id", "")
        if task:
            last_of_task[task] = i
    open_claims: set[str] = set()
    for i, event in enumerate(ordered):
        if claim_worker(event) is None or event.id in answered:
            continue
        task = event.payload.task_id if isinstance(event.payload, ev.TaskStarted) else ""
        if last_of_key[reaction_key(event)] == i and (not task or last_of_task[task] == i):
            open_claims.add(event.id)
    return open_claims
