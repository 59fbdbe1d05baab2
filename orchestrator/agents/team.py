"""The team: which agent does each kind of reaction of the flow."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.agents import cto, dev, devops, engineer, monitor, pm, qa
from orchestrator.agents.base import AgentContext, AgentOutput
from orchestrator.core.flow import Reaction

AgentFn = Callable[[AgentContext, Reaction], AgentOutput]

AGENTS: dict[str, AgentFn] = {
    "review_spec": cto.review_spec,
    "propose": engineer.propose,
    "decide_proposal": cto.decide_proposal,
    "plan_backlog": pm.plan_backlog,
    "work": dev.work,
    "qa": qa.review,
    "deploy": devops.deploy,
    "squad_report": pm.squad_report,
    "final_report": cto.final_report,
    "fix_task": pm.fix_task,
    "answer_dependency": cto.answer_dependency,
}


def perform(ctx: AgentContext, reaction: Reaction) -> AgentOutput:
    """Run the agent for a reaction (the Monitor's decided reactions need no agent call)."""
    if not reaction.is_agent_work:
        return monitor.apply(ctx, reaction)
    return AGENTS[reaction.kind](ctx, reaction)
