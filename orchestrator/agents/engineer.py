"""Engineer: answers the CTO's request with a technical proposal: squads and dependencies."""

from __future__ import annotations

from orchestrator.agents.base import (
    AgentContext,
    AgentOutput,
    ask,
    docs_path,
    facts,
    known,
    requirement_facts,
    requirements_block,
    spec_text,
)
from orchestrator.agents.cto import charter_problems, sanitize_squads
from orchestrator.agents.outputs import ProposalOutput
from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief


def propose(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    rnd = s.review_round
    spec = spec_text(ctx)
    sections = [facts(project=s.id, round=rnd), requirements_block(s)]
    if spec:
        sections.append(f"## Spec: {s.spec_path}\n{spec}")
    if s.last_questions:
        sections.append("## Questions\n" + "\n".join(f"- {q}" for q in s.last_questions))
    out = AgentOutput()
    brief = Brief(
        task="Propose the squads that will build this spec: one per area of work, each with "
             "its scope, the squads it depends on and the requirements it delivers."
             + (" Answer the CTO's questions." if s.last_questions else ""),
        context="\n\n".join(sections),
        expected_return="Squads, answers to the questions, and a proposal document.",
    )

    def one_squad_each(answer: ProposalOutput) -> list[str]:
        return charter_problems(s.requirements,
                                sanitize_squads([sq.model_dump() for sq in answer.squads]))

    given = known({"project": s.id, "round": rnd, "spec": spec or "",
                   "questions": list(s.last_questions)}, requirement_facts(s, s.requirements))
    proposal = ask(ctx, r, "engineer", brief, ProposalOutput, out, given, check=one_squad_each,
                   choices={"squads.requirements": s.requirements})
    squads = sanitize_squads([sq.model_dump() for sq in proposal.squads])
    link = out.write(docs_path(s.id, f"proposal-round{rnd}.md"), proposal.proposal_markdown)
    out.emit(r, ev.EngineerCtoResponse(
        round=rnd, squads=squads,
        answers=[a[:2000] for a in proposal.answers][:20], proposal=link.ref), links=[link])
    return out
