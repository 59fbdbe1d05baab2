"""Offline provider: the CTO's and the Engineer's answers — spec review, proposal, decision.

Each reads the call's typed facts (core/provider.py Facts): `spec` (the spec's text, for the
review), `requirements`, `questions`, `squads` (the proposal decided on), `round`,
`max_rounds`, `project`. The spec is a person's document and is read as a model reads it;
nothing here parses what another agent wrote."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from orchestrator.agents.outputs import (
    ProposalDecision,
    ProposalOutput,
    RequirementItem,
    RequirementOwner,
    SpecReviewOutput,
    SquadProposal,
)
from orchestrator.core.provider import Facts, SquadFact
from orchestrator.sim.spec import (
    REQ_ID,
    Requirement,
    assigned_requirements,
    infer_area,
    md_cell,
    open_questions,
    parse_requirements,
    scope_notes,
    short_title,
    spec_summary,
    spec_title,
    squad_area,
)

SPLIT_ABOVE = 6
"""An area with more requirements than this is split into `<area>-basic` and `<area>-advanced`."""
_SQUAD_ORDER = ("platform", "backend", "web", "mobile", "infrastructure")


def requirements_of(facts: Facts) -> list[Requirement]:
    """The call's requirements, each in the area it was given (in any words), else the one
    its text points at."""
    return [Requirement(r.id, r.text, infer_area(r.text, (), r.area)) for r in facts.requirements]


def spec_review(facts: Facts) -> SpecReviewOutput:
    spec = facts.text("spec")
    # A spec without ids: the ids the CTO assigned (kept across rounds) are in the facts;
    # without them, the same pure rule the CTO applies.
    reqs = parse_requirements(spec) or requirements_of(facts) or assigned_requirements(spec)
    title = spec_title(spec, default=facts.text("project", "project"))
    areas = list(dict.fromkeys(r.area for r in reqs))
    n_fr = sum(r.is_functional for r in reqs)
    counts = (f"The spec has {n_fr} functional and {len(reqs) - n_fr} non-functional "
              f"requirements across {', '.join(areas) or 'no named area'}.")
    summary = " ".join(p for p in (spec_summary(spec), counts) if p)
    questions = open_questions(reqs)
    doc = [f"# Understood spec: {title}", "", "## Summary", "", summary, "",
           "## Requirements by area", ""]
    for area in areas:
        doc += [f"### {area}", "", "| id | requirement |", "|---|---|"]
        doc += [f"| {r.id} | {md_cell(r.text)} |" for r in reqs if r.area == area]
        doc.append("")
    if not reqs:
        doc += ["No FR-n/NFR-n items were found.", ""]
    notes = scope_notes(spec) or ["No explicit scope limits or acceptance criteria are stated."]
    doc += ["## Scope notes", "", f"- Areas: {', '.join(areas) or 'none'}"]
    doc += [f"- {n}" for n in notes]
    doc += ["", "## Open questions", ""]
    doc += [f"- {q}" for q in questions] or ["- None."]
    items = [RequirementItem(id=r.id, area=r.area) for r in reqs]
    return SpecReviewOutput(title=title, summary=summary, requirements=items, areas=areas,
                            understood_spec_markdown="\n".join(doc) + "\n",
                            open_questions=questions)


def plan_squads(reqs: Sequence[Requirement]) -> list[SquadFact]:
    """Squads from requirement areas: one per area, big areas split, `general` to the first."""
    order = {r.id: i for i, r in enumerate(reqs)}
    by_area: dict[str, list[Requirement]] = {}
    for req in reqs:
        by_area.setdefault(req.area, []).append(req)
    # Every area the spec names is a squad: the known ones first, then the spec's own.
    own = [a for a in ("backend", "web", "mobile") if by_area.get(a)] + [
        a for a in by_area if a not in ("backend", "web", "mobile", "infrastructure", "general")]
    infra = by_area.get("infrastructure", [])
    general = by_area.get("general", [])
    infra_squad = bool(infra) and (any(r.is_functional for r in infra) or len(infra) >= 2
                                   or not own)
    if infra and not infra_squad:
        general = sorted(general + infra, key=lambda r: order[r.id])
    groups: list[tuple[str, list[Requirement]]] = []
    for area in own:
        items = by_area[area]
        if len(items) > SPLIT_ABOVE:
            half = math.ceil(len(items) / 2)
            groups += [(f"{area}-basic", items[:half]), (f"{area}-advanced", items[half:])]
        else:
            groups.append((area, items))
    if general and groups:
        name, items = groups[0]
        groups[0] = (name, sorted(items + general, key=lambda r: order[r.id]))
    elif general:
        groups.insert(0, ("platform", general))
    if infra_squad:
        groups.append(("infrastructure", infra))
    names = [g[0] for g in groups]
    return [SquadFact(name=name, scope=squad_scope(name, items),
                      depends_on=tuple(_depends_on(name, names)),
                      requirements=tuple(r.id for r in items)) for name, items in groups]


def _depends_on(name: str, names: Sequence[str]) -> list[str]:
    area = squad_area(name)
    deps: list[str] = []
    if area in ("web", "mobile"):
        deps += [n for n in names if squad_area(n) == "backend"]
    if name.endswith("-advanced"):
        deps.append(name[: -len("-advanced")] + "-basic")
    return [d for d in dict.fromkeys(deps) if d != name and d in names]


def squad_scope(name: str, items: Sequence[Requirement]) -> str:
    parts = [f"{r.id} {short_title(r.text, 14)}" for r in items[:5]]
    more = f"; and {len(items) - 5} more" if len(items) > 5 else ""
    ids = ", ".join(r.id for r in items) or "no listed requirement"
    return f"The {name} squad delivers {ids}: " + "; ".join(parts) + more + "."


def build_order(squads: Sequence[SquadFact]) -> list[SquadFact]:
    """Squads in an order where each comes after what it depends on (cycles: input order)."""
    done: list[SquadFact] = []
    pending = sorted(squads, key=lambda s: (_rank(s.name), s.name))
    while pending:
        ready = [s for s in pending if all(d in {x.name for x in done} or d not in
                                           {p.name for p in pending} for d in s.depends_on)]
        pick = ready[0] if ready else pending[0]
        done.append(pick)
        pending.remove(pick)
    return done


def _rank(name: str) -> int:
    area = "platform" if name == "platform" else squad_area(name)
    return _SQUAD_ORDER.index(area) if area in _SQUAD_ORDER else len(_SQUAD_ORDER)


def proposal(facts: Facts) -> ProposalOutput:
    reqs = requirements_of(facts)
    squads = build_order(plan_squads(reqs))
    questions = list(facts.names("questions"))
    answers = [answer_question(q, reqs, squads) for q in questions]
    title = spec_title(facts.text("spec"), default=facts.text("project", "project"))
    md = [f"# Technical proposal: {title}", "",
          f"Round {facts.number('round', 1)}: {len(reqs)} requirements, {len(squads)} squads.",
          "", "## Squads", "", "| squad | depends on | requirements | scope |", "|---|---|---|---|"]
    md += [f"| {s.name} | {', '.join(s.depends_on) or '-'} | {', '.join(s.requirements)} | "
           f"{md_cell(s.scope)} |" for s in squads]
    md += ["", "## Build order", ""]
    md += [f"{i}. {s.name}" + (f" (after {', '.join(s.depends_on)})" if s.depends_on else "")
           for i, s in enumerate(squads, 1)]
    owner = {rid: s.name for s in squads for rid in s.requirements}
    md += ["", "## Requirement ownership", "", "| requirement | area | squad |", "|---|---|---|"]
    md += [f"| {r.id} | {r.area} | {owner.get(r.id, '-')} |" for r in reqs]
    if questions:
        md += ["", "## Answers to the CTO's questions", ""]
        pairs = zip(questions, answers, strict=True)
        md += [f"{i}. {q}\n   - {a}" for i, (q, a) in enumerate(pairs, 1)]
    return ProposalOutput(
        squads=[SquadProposal(name=s.name, scope=s.scope, depends_on=list(s.depends_on))
                for s in squads],
        owners=[RequirementOwner(requirement=r.id, squad=owner[r.id]) for r in reqs
                if r.id in owner],
        answers=answers, proposal_markdown="\n".join(md) + "\n")


def answer_question(question: str, reqs: Sequence[Requirement],
                    squads: Sequence[SquadFact]) -> str:
    owner = {rid: s.name for s in squads for rid in s.requirements}
    texts = {r.id: r.text for r in reqs}
    ids = list(dict.fromkeys(m.upper() for m in REQ_ID.findall(question)))
    if not ids:
        first = squads[0].name if squads else "the first squad"
        return (f"Noted: the squads' scopes cover it; the PM of {first} owns the follow-up and "
                f"reports back through the CTO.")
    parts: list[str] = []
    for rid in ids:
        squad = owner.get(rid)
        if squad is None:
            parts.append(f"{rid} is not in the requirements I was given; please restate it.")
            continue
        text = texts.get(rid, "")
        if re.search(r"measur|target|number|testable|not measurable", question, re.I):
            parts.append(f"{rid} is owned by {squad}; its QA checks it with an automated test "
                         f"that states the target explicitly ('{short_title(text, 10)}').")
        else:
            parts.append(f"{rid} is owned by {squad}: {short_title(text, 12)}.")
    return " ".join(parts)


def decision(facts: Facts) -> ProposalDecision:
    reqs = requirements_of(facts)
    proposed = list(facts.squads)
    owned = {rid for sq in proposed for rid in sq.requirements}
    uncovered = [r for r in reqs if r.id not in owned]
    rnd, max_rounds = facts.number("round", 1), facts.number("max_rounds", 3)
    if uncovered and rnd < max_rounds:
        ids = ", ".join(r.id for r in uncovered)
        return ProposalDecision(
            approve=False,
            questions=[f"{r.id} ('{short_title(r.text, 10)}') is not assigned to any squad: "
                       f"which squad delivers it?" for r in uncovered],
            rationale=f"Round {rnd}: the proposal leaves {len(uncovered)} requirement(s) "
                      f"uncovered ({ids}).",
            charter_markdown="")
    squads = proposed or plan_squads(reqs)
    if uncovered:
        rationale = (f"Round {rnd} of {max_rounds}: approved at the round limit; "
                     f"{', '.join(r.id for r in uncovered)} stay unassigned.")
    else:
        rationale = (f"Round {rnd}: the proposal covers all {len(reqs)} requirements with "
                     f"{len(squads)} squad(s).")
    return ProposalDecision(approve=True, questions=[], rationale=rationale,
                            charter_markdown=charter(facts.text("project", "project"), squads,
                                                     reqs, rationale))


def charter(project: str, squads: Sequence[SquadFact], reqs: Sequence[Requirement],
            rationale: str) -> str:
    owner = {rid: s.name for s in squads for rid in s.requirements}
    md = [f"# Charter: {project}", "", rationale, "", "## Squads", "",
          "| squad | scope | depends on |", "|---|---|---|"]
    md += [f"| {s.name} | {md_cell(s.scope) or '-'} | {', '.join(s.depends_on) or '-'} |"
           for s in squads]
    md += ["", "## Requirement ownership", "", "| requirement | squad | text |", "|---|---|---|"]
    md += [f"| {r.id} | {owner.get(r.id, 'unassigned')} | {md_cell(r.text)} |" for r in reqs]
    md += ["", "## Build order", ""]
    md += [f"{i}. {s.name}" + (f" (after {', '.join(s.depends_on)})" if s.depends_on else "")
           for i, s in enumerate(build_order(squads), 1)]
    md += ["", "## Working agreements", "",
           "- Every task names the FR/NFR ids it delivers; QA checks the artifacts against them.",
           "- A squad needing another squad's work asks the CTO (dependency request), never the "
           "squad directly; a blocked task is reported to the CTO as a block.",
           "- Each squad's DevOps deploys the squad once all its tasks passed QA."]
    return "\n".join(md) + "\n"
