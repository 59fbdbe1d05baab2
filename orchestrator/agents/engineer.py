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
from orchestrator.agents.cto import charter_problems, sanitize_squads, squad_name
from orchestrator.agents.outputs import ProposalOutput
from orchestrator.core import events as ev
from orchestrator.core.checks import requirement_key
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
        return charter_problems(s.requirements, proposed_squads(answer, s.requirements))

    given = known({"project": s.id, "round": rnd, "spec": spec or "",
                   "questions": list(s.last_questions)}, requirement_facts(s, s.requirements))
    # One owner per requirement, in order: a server that enforces the schema by grammar
    # spells the list out, so no requirement can be left without a squad or given two.
    proposal = ask(ctx, r, "engineer", brief, ProposalOutput, out, given, check=one_squad_each,
                   sequences={"owners": ("requirement", s.requirements)})
    squads = proposed_squads(proposal, s.requirements)
    link = out.write(docs_path(s.id, f"proposal-round{rnd}.md"), proposal.proposal_markdown)
    out.emit(r, ev.EngineerCtoResponse(
        round=rnd, squads=squads,
        answers=[a[:2000] for a in proposal.answers][:20], proposal=link.ref), links=[link])
    return out


def proposed_squads(answer: ProposalOutput, requirements: list[str]) -> list[ev.SquadPlan]:
    """The squads that deliver something, each with the requirements `owners` gives it (ids
    not among `requirements` dropped), in the order `squads` lists them, then the ones only
    `owners` names (their scope: what they deliver). Names are compared as squad names are
    written: trimmed, lower case, spaces as dashes."""
    known_ids = {requirement_key(rid): rid for rid in requirements}
    delivers: dict[str, list[str]] = {}
    for owner in answer.owners:
        rid = known_ids.get(requirement_key(owner.requirement))
        if rid is not None:
            delivers.setdefault(squad_name(owner.squad), []).append(rid)
    described = {squad_name(sq.name): sq for sq in answer.squads}
    order = [*described, *(name for name in delivers if name not in described)]
    raw = []
    for name in dict.fromkeys(order):
        if not delivers.get(name):
            continue
        sq = described.get(name)
        raw.append({"name": name, "requirements": delivers[name],
                    "scope": sq.scope if sq else f"Delivers {', '.join(delivers[name])}.",
                    "depends_on": list(sq.depends_on) if sq else []})
    return sanitize_squads(raw)
