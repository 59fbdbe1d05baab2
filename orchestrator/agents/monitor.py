"""Monitor: one per squad; its decisions (QA after each completed task, rework or
rework-exhausted, DevOps once a squad passed, reactivation after a block, stale claims,
the loop guard) are pure rules of the flow in `core.flow`: this agent writes what they
decided, with no model call."""

from __future__ import annotations

from orchestrator.agents.base import AgentContext, AgentOutput
from orchestrator.core.flow import Reaction


def apply(ctx: AgentContext, r: Reaction) -> AgentOutput:
    return AgentOutput(events=list(r.events))
