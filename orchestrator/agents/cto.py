"""CTO: reviews the spec, settles the proposal with the Engineer into a Charter, answers
dependency requests, and writes the final report for the spec's author."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.agents import reports
from orchestrator.agents.base import (
    AgentContext,
    AgentFailure,
    AgentOutput,
    answered,
    ask,
    docs_path,
    facts,
    known,
    requirement_facts,
    requirements_block,
    spec_text,
)
from orchestrator.agents.outputs import (
    DependencyAnswer,
    ProposalDecision,
    ReportOutput,
    SpecReviewOutput,
)
from orchestrator.core import events as ev
from orchestrator.core.checks import (
    missing_from_review,
    ownership_problems,
    requirement_key,
    spec_requirement_lines,
)
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief
from orchestrator.core.provider import RequirementFact, SquadFact
from orchestrator.core.requirements import (
    SpecItem,
    assign_requirement_ids,
    defined_requirements,
    requirement_changes,
    section_areas,
)
from orchestrator.core.specs import slug
from orchestrator.core.state import ModuleStatus
from orchestrator.core.text import clean

_SQUAD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_ANY_ID = re.compile(r"^N?FR-[A-Z0-9.]+$")


def review_spec(ctx: AgentContext, r: Reaction) -> AgentOutput:
    """The spec as committed at spec_ref, understood; ids assigned (and kept across rounds)
    when the spec gives none. A change round reviews again and names what moved."""
    s = ctx.state
    spec = spec_text(ctx)
    previous = {rid: d.get("text", "") for rid, d in s.requirement_details.items()}
    assigned = assign_requirement_ids(spec, previous if s.ids_assigned else None) if spec else []
    if spec is None:
        spec = f"# {s.title or s.id}\n\n(No spec file; the project was created by hand.)\n"
    lines = spec_requirement_lines(spec)
    # The requirements in the spec's words: the items that carry the spec's own ids, else
    # the ones assigned. A model names each one's area; it never has to copy their text.
    items = defined_requirements(spec) or assigned
    listed = [i.id for i in items]
    areas = section_areas(items)
    # The ids are handed over (the spec's own, or the ones assigned to a spec without them):
    # a small model copies them far more reliably than it finds them.
    context = [facts(project=s.id, round=s.round, requirement_ids=listed or "-")]
    if assigned:
        context.append("## Requirements (the spec gives no ids: these are assigned, keep them)\n"
                       + "\n".join(f"- {a.id}" + (f" ({_area(areas[a.id])})" if areas[a.id]
                                                   else "") + f": {a.text}" for a in assigned))
    context.append(f"## Spec: {s.spec_path or s.id}\n{spec}")
    out = AgentOutput()
    brief = Brief(
        task="Review the spec: restate it as understood, give every requirement's id with "
             "its area of work (in the spec's words), and note open questions.",
        context="\n\n".join(context),
        expected_return="The spec as understood, its requirements' areas and open questions.",
    )

    def covers_the_spec(answer: SpecReviewOutput) -> list[str]:
        if assigned:  # the CTO's own ids: any the model leaves out keep the spec's words
            return []
        kept = [requirement_key(item.id) for item in answer.requirements]
        if not lines:
            if any(_ANY_ID.match(rid) for rid in kept):
                return []
            return ["the review lists no requirement (ids FR-n / NFR-n)"]
        return [f"the review leaves out {rid} (the spec says: {lines[rid][:200]})"
                for rid in missing_from_review(lines, kept)]

    # The review's list is the spec's requirements, one item each, in order: a server that
    # enforces the schema by grammar spells it out, so a small model can neither leave one
    # out nor repeat one. Areas are held to the spec's sections where it has several.
    sections = list(dict.fromkeys(a for a in areas.values() if a))
    given = known({"project": s.id, "round": s.round, "spec": spec}, [
        RequirementFact(a.id, a.text, _area(areas[a.id]) if areas[a.id] else "")
        for a in assigned] if assigned else [])
    review = ask(ctx, r, "cto", brief, SpecReviewOutput, out, given, check=covers_the_spec,
                 choices={"requirements.area": [*sections, "general"]} if sections else None,
                 sequences={"requirements": ("id", listed)} if listed else None)
    details = _reviewed_requirements(review, items, bool(assigned))
    if not details:
        raise AgentFailure("invalid_output", "spec review found no requirements")
    name = "spec-review.md" if s.round == 1 else f"spec-review-round{s.round}.md"
    doc = out.write(docs_path(s.id, name),
                    _review_document(review.understood_spec_markdown, details, bool(assigned)))
    added, changed, removed = ([], [], []) if s.round == 1 else requirement_changes(
        previous, {d.id: d.text for d in details})
    out.emit(r, ev.SpecReviewed(summary=review.summary[:2000], requirements=[d.id for d in details],
                                details=details, doc=doc.ref, round=s.round,
                                ids_assigned=bool(assigned), added=added, changed=changed,
                                removed=removed), links=[doc])
    if s.round > 1:
        return out  # the squads stay; the flow replans them with what changed
    engineer_brief = Brief(
        task="Propose the squads (one per area of work) that will build this spec, with the "
             "squads each depends on and the requirements each delivers.",
        context=f"{facts(project=s.id, round=1)}\n\nUnderstood spec: {doc.ref}\n\n"
                + "\n".join(f"- {d.id} ({d.area}): {d.text}" for d in details),
        expected_return="Squads with scope, dependencies and requirements; a proposal document.",
    ).render()
    out.emit(r, ev.CtoEngineerRequest(round=1, brief=engineer_brief,
                                      questions=list(review.open_questions)[:20]))
    return out


def _reviewed_requirements(review: SpecReviewOutput, items: list[SpecItem],
                           assigned: bool) -> list[ev.RequirementRef]:
    """The spec's requirements in its own words, each in the area the model gave it (first
    mention wins), else its section. Only the ones the model reviewed, except with assigned
    ids, where the CTO assigned them itself; a spec with no items keeps the model's ids."""
    named: dict[str, str] = {}
    for item in review.requirements:
        named.setdefault(requirement_key(item.id), item.area.strip())
    if not items:
        return [ev.RequirementRef(id=rid, area=_area(area)) for rid, area in named.items()
                if _ANY_ID.match(rid)]
    areas = section_areas(items)
    return [ev.RequirementRef(id=i.id, area=_area(named.get(i.id) or areas[i.id]), text=i.text)
            for i in items if assigned or i.id in named]


def _area(text: str) -> str:
    """An area as a squad-name-like word: the spec's own words, transliterated."""
    return slug(text, 40) or "general"


def _review_document(markdown: str, details: list[ev.RequirementRef], assigned: bool) -> str:
    """The understood spec, and always the requirement ids it was reviewed with."""
    lines = [markdown.rstrip(), "", "## Requirement ids", ""]
    if assigned:
        lines += ["The spec gives no FR-/NFR- ids: these were assigned by the CTO and are "
                  "kept in later rounds.", ""]
    lines += ["| id | area | requirement |", "|---|---|---|"]
    lines += [f"| {d.id} | {d.area} | {' '.join(d.text.split()).replace('|', '/')} |"
              for d in details]
    return "\n".join(lines) + "\n"


def decide_proposal(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    last_round = s.review_round
    final = last_round >= ctx.config.max_review_rounds
    squads = sanitize_squads(s.proposed_squads)
    out = AgentOutput()
    brief = Brief(
        task="Approve the Engineer's proposal and write the Charter, or ask questions."
             + (" This is the last round: approve." if final else ""),
        context="\n\n".join([
            facts(project=s.id, round=last_round, max_rounds=ctx.config.max_review_rounds),
            requirements_block(s),
            "## Proposal\n" + "\n".join(
                f"- {sq.name}: {sq.scope} (depends on: {', '.join(sq.depends_on) or '-'};"
                f" requirements: {', '.join(sq.requirements)})" for sq in squads),
        ]),
        expected_return="approve true with the Charter, or false with the questions.",
    )
    given = known({"project": s.id, "round": last_round,
                   "max_rounds": ctx.config.max_review_rounds},
                  requirement_facts(s, s.requirements),
                  squads=tuple(SquadFact(sq.name, sq.scope, tuple(sq.depends_on),
                                         tuple(sq.requirements)) for sq in squads))
    decision = ask(ctx, r, "cto", brief, ProposalDecision, out, given)
    problems = charter_problems(s.requirements, squads)
    if (decision.approve or final) and problems and final:
        raise AgentFailure("invalid_output", "the Charter would break the rules: "
                           + "; ".join(problems[:20]))
    if (decision.approve or final) and not problems:
        charter = decision.charter_markdown.strip() or _charter_text(squads)
        link = out.write(docs_path(s.id, "charter.md"), charter)
        out.emit(r, ev.CharterCreated(charter=link.ref, rounds=last_round,
                                      squads=squads),
                 links=[link])
    else:
        # A Charter that leaves a requirement unowned (or shared) is never written: the
        # Engineer is asked to fix the proposal instead, within the review rounds.
        questions = [q for q in decision.questions if q.strip()][:20]
        questions = (questions + [f"Fix the proposal: {p}." for p in problems])[:20] or [
            "Revise the proposal: " + (clean(decision.rationale, 500)
                                        or "the CTO did not approve it.")]
        out.emit(r, ev.CtoEngineerRequest(round=last_round + 1, questions=questions,
                                          brief=decision.rationale[:4000]))
    return out


def sanitize_squads(raw: list[dict[str, Any]]) -> list[ev.SquadPlan]:
    """Valid, unique squad names; dependencies only on known squads and without cycles."""
    squads: dict[str, ev.SquadPlan] = {}
    for sq in raw:
        name = squad_name(str(sq.get("name", "")))
        if not _SQUAD_NAME.match(name) or name in squads or name in ("docs", "qa"):
            continue
        # Keep an edge only if it points at a squad listed earlier: no cycles.
        deps = [str(d).strip().lower() for d in _as_list(sq.get("depends_on"))]
        squads[name] = ev.SquadPlan(
            name=name, scope=str(sq.get("scope", ""))[:2000],
            depends_on=[d for d in dict.fromkeys(deps) if d in squads],
            requirements=[str(x) for x in _as_list(sq.get("requirements"))])
    return list(squads.values())


def squad_name(text: str) -> str:
    """A squad's name as people and models write it, normalised: trimmed, lower case, dashes."""
    return "-".join(text.strip().lower().split())


def charter_problems(requirements: list[str], squads: list[ev.SquadPlan]) -> list[str]:
    """What keeps these squads from being a Charter: none, or a requirement without exactly
    one squad (the core's rule)."""
    if not squads:
        return ["the proposal names no valid squad"]
    return ownership_problems(requirements, {sq.name: sq.requirements for sq in squads})


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _charter_text(squads: list[ev.SquadPlan]) -> str:
    lines = ["# Charter", "", "| squad | scope | depends on | requirements |", "|---|---|---|---|"]
    for sq in squads:
        lines.append(f"| {sq.name} | {sq.scope} | {', '.join(sq.depends_on) or '-'} "
                     f"| {', '.join(sq.requirements)} |")
    return "\n".join(lines) + "\n"


def answer_dependency(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    dep = s.dependencies[r.subject]
    target = s.modules.get(dep.to_squad)
    # Planned files, not what happens to be written yet: the answer must not depend on timing.
    artifacts = sorted({a for t in s.tasks.values() if t.module == dep.to_squad
                        for a in t.expected_files})
    out = AgentOutput()
    brief = Brief(
        task=f"Answer squad {dep.from_squad}'s request to squad {dep.to_squad}: {dep.need}",
        context="\n\n".join([
            facts(project=s.id, squad=dep.from_squad, to_squad=dep.to_squad),
            f"## Scope of {dep.to_squad}\n{target.scope if target else '(unknown squad)'}",
            "## Artifacts\n" + "\n".join(f"- {a}" for a in artifacts),
        ]),
        expected_return="The answer the requesting squad can build on.",
    )
    given = known({"project": s.id, "squad": dep.from_squad, "to_squad": dep.to_squad,
                   "need": dep.need, "scope": target.scope if target else "",
                   "artifacts": artifacts})
    answer = ask(ctx, r, "cto", brief, DependencyAnswer, out, given)
    out.emit(r, ev.DependencyFulfilled(dependency_id=dep.id, answer=answer.answer[:4000],
                                       artifacts=artifacts[:50]))
    return out


def final_report(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    delivered = [m.name for m in s.modules.values() if m.status == ModuleStatus.COMPLETED]
    failed = [m.name for m in s.modules.values() if m.status == ModuleStatus.FAILED]
    out = AgentOutput()
    brief = Brief(
        task="Write the final report for the spec's author from the squad reports.",
        context="\n\n".join([
            facts(project=s.id, round=s.round, delivered=delivered, failed=failed),
            "## Squad reports\n" + "\n".join(
                f"### {m.name} ({m.status.value})\n{ctx.read_text(m.report) or ''}"
                for m in s.modules.values()),
        ]),
        expected_return="What was delivered, what failed and why, and what to do next.",
    )
    given = known({"project": s.id, "round": s.round, "delivered": delivered,
                   "failed": failed})
    report = ask(ctx, r, "cto", brief, ReportOutput, out, given)
    answered(brief, report.result, out.files)  # the answer is held against its brief first
    link = out.write(docs_path(s.id, f"final-report-round{s.round}.md"),
                     reports.final_report(s, report.summary, report.result, delivered, failed))
    out.emit(r, ev.ProjectCompleted(report=link.ref, summary=report.summary[:2000],
                                    delivered=delivered, failed=failed), links=[link])
    return out
