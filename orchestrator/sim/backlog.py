"""Offline provider: the PM's answers — backlogs, fix tasks — and the CTO's dependency answers.

They read the call's typed facts: for a backlog `squad`, `requirements` (the squad's),
`depends_on`, `round`, `max_depth`, `change_request`, `added`, `changed`; for a fix `block`,
`blocked_squad`, `description`; for a dependency `need`, `to_squad`, `scope`, `artifacts`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.agents.outputs import (
    BacklogOutput,
    DependencyAnswer,
    DependencyNeed,
    FixTaskOutput,
    PlannedTask,
)
from orchestrator.core.provider import Facts
from orchestrator.sim.plan import requirements_of
from orchestrator.sim.spec import (
    REQ_ID,
    Requirement,
    best_match,
    clauses,
    content_words,
    short_title,
    slug,
    squad_area,
    unit,
)

MACRO_WORDS = 25
"""A requirement longer than this (or with several clauses) becomes a macro task."""
_PART_FOCUS = ("the main behaviour", "the error and edge cases", "the documentation and examples",
               "performance", "security", "accessibility and usability")


@dataclass
class _Draft:
    key: str
    title: str
    req: Requirement
    files: list[str]
    brief: str
    subtasks: list[PlannedTask] = field(default_factory=list)


def files_for(area: str, name: str, text: str, functional: bool, squad: str = "") -> list[str]:
    """The files a task writes, relative to the squad folder, by the kind of work. Python
    tests carry the squad's name: pytest run from the project's folder needs unique names."""
    lowered = text.lower()
    if area == "web":
        return ([f"src/{name}.js", f"src/{name}.html", f"tests/{name}.test.js"] if functional
                else [f"src/{name}.js", f"tests/{name}.test.js"])
    if area == "mobile":
        return [f"src/{name}.ts", f"tests/{name}.test.ts"]
    if area == "infrastructure":
        if re.search(r"\bci\b|pipeline|workflow", lowered):
            return [f"ci/{name}.yml"]
        if re.search(r"kubernetes|k8s|helm|container", lowered):
            return [f"deploy/{name}.yaml"]
        return [f"infra/{name}.tf", f"docs/{name}.md"]
    if area == "general" and not functional:
        return [f"docs/{name}.md"]
    prefix = re.sub(r"\W+", "_", squad).strip("_")
    return [f"src/{name}.py", f"tests/test_{prefix + '_' if prefix else ''}{name}.py"]


def _file_area(req: Requirement, squad: str) -> str:
    own = squad_area(squad)
    if req.area in ("backend", "web", "mobile", "infrastructure"):
        return req.area
    return own


def is_macro(text: str) -> bool:
    return len(text.split()) > MACRO_WORDS or len(clauses(text)) >= 2


def split_two(text: str) -> tuple[str, str]:
    parts = clauses(text)
    if len(parts) >= 2:
        return parts[0], "; ".join(parts[1:])
    tokens = text.split()
    mid = len(tokens) // 2
    commas = [i + 1 for i, t in enumerate(tokens[:-1]) if t.endswith(",")]
    if commas:
        mid = min(commas, key=lambda i: abs(i - mid))
    return " ".join(tokens[:mid]).rstrip(","), " ".join(tokens[mid:])


class _Names:
    """Unique file slugs inside one backlog."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, text: str, req_id: str, suffix: str = "") -> str:
        name = slug(text) + suffix
        if name in self.used:
            name = f"{name}_{req_id.lower().replace('-', '')}"
        base, n = name, 2
        while name in self.used:
            name, n = f"{base}_{n}", n + 1
        self.used.add(name)
        return name


def backlog(facts: Facts, tasks_per_requirement: int, seed: int,
            dependency_request_rate: float) -> BacklogOutput:
    squad = facts.text("squad") or "squad"
    reqs = requirements_of(facts)
    change = facts.text("change_request")
    if facts.number("round", 1) > 1 and change:
        return _change_backlog(facts, squad, reqs, change)
    names = _Names()
    max_depth = max(facts.number("max_depth", 1), 0)
    drafts: list[_Draft] = []
    for req in reqs:
        for part in range(1, tasks_per_requirement + 1):
            drafts.append(_draft(f"T{len(drafts) + 1}", req, part, tasks_per_requirement,
                                 squad, names, max_depth))
    if not drafts:
        fallback = Requirement("", f"Deliver the scope of {squad}", squad_area(squad))
        drafts.append(_draft("T1", fallback, 1, 1, squad, names, 0))
    fr_keys = [d.key for d in drafts if d.req.is_functional]
    tasks = [PlannedTask(key=d.key, title=d.title, requirements=[d.req.id] if d.req.id else [],
                         depends_on=[] if d.req.is_functional else fr_keys,
                         expected_files=d.files, brief=d.brief, subtasks=d.subtasks)
             for d in drafts]
    requests = _dependency_requests(facts, squad, tasks, seed, dependency_request_rate)
    macros = [d.key for d in drafts if d.subtasks]
    notes = (f"Backlog of {squad}: {len(tasks)} task(s) for {len(reqs)} requirement(s), "
             f"{tasks_per_requirement} per requirement.")
    if macros:
        notes += f" Macro tasks split into two subtasks each: {', '.join(macros)}."
    if fr_keys and len(fr_keys) < len(tasks):
        notes += " Non-functional tasks wait for the functional ones."
    if requests:
        notes += " Needs from other squads: " + ", ".join(r.to_squad for r in requests) + "."
    return BacklogOutput(tasks=tasks, dependency_requests=requests, notes=notes)


def _draft(key: str, req: Requirement, part: int, parts: int, squad: str, names: _Names,
           max_depth: int) -> _Draft:
    area = _file_area(req, squad)
    suffix = f" (part {part} of {parts})" if parts > 1 else ""
    file_suffix = f"_part{part}" if part > 1 else ""
    focus = (f" Focus of this part: {_PART_FOCUS[(part - 1) % len(_PART_FOCUS)]}."
             if parts > 1 else "")
    title = short_title(req.text) + suffix
    label = req.id or squad
    if max_depth >= 1 and is_macro(req.text):
        halves = split_two(req.text)
        subtasks = []
        for letter, half, other in (("a", halves[0], halves[1]), ("b", halves[1], halves[0])):
            files = files_for(area, names.take(half, req.id, file_suffix), half,
                              req.is_functional, squad)
            brief = (f"Part {letter} of {label}{suffix}: {half}. The other part covers: "
                     f"{other}.{focus} " + _how(area, files, label))
            subtasks.append(PlannedTask(key=f"{key}{letter}", title=short_title(half) + suffix,
                                        requirements=[req.id] if req.id else [], depends_on=[],
                                        expected_files=files, brief=brief, subtasks=[]))
        brief = (f"Macro task for {label}: {req.text} It is done when its subtasks "
                 f"{key}a and {key}b pass QA.")
        return _Draft(key, title, req, [], brief, subtasks)
    files = files_for(area, names.take(req.text, req.id or key, file_suffix), req.text,
                      req.is_functional, squad)
    brief = f"Implement {label}{suffix}: {req.text}{focus} " + _how(area, files, label)
    return _Draft(key, title, req, files, brief)


def _how(area: str, files: Sequence[str], label: str) -> str:
    kinds = {
        "backend": "a small in-memory implementation with docstrings, and pytest tests",
        "web": "an ES module with the page logic, the page itself and node:test tests",
        "mobile": "a typed module with the screen logic and its tests",
        "infrastructure": "the infrastructure as code and how to run it",
        "general": "the implementation and its tests, or the document",
    }
    return (f"Write {', '.join(files)}: {kinds.get(area, kinds['general'])}. "
            f"Name {label} in every file.")


def _dependency_requests(facts: Facts, squad: str, tasks: Sequence[PlannedTask],
                         seed: int, rate: float) -> list[DependencyNeed]:
    if not tasks or rate <= 0:
        return []
    first = tasks[0]
    needs: list[DependencyNeed] = []
    for other in dict.fromkeys(facts.names("depends_on")):
        if other == squad or unit(seed, facts.text("project", "project"), squad, other,
                                  "dependency") >= rate:
            continue
        needs.append(DependencyNeed(to_squad=other, need=_need(other, first),
                                    task_key=first.key))
    return needs


def _need(other: str, task: PlannedTask) -> str:
    area = squad_area(other)
    title = task.title
    if area == "backend":
        return (f"The API contract of the {other} endpoints that {task.key} ('{title}') calls: "
                f"paths, request and response fields, error codes and authentication.")
    if area == "infrastructure":
        return (f"The deploy target, environment variables and health-check URL that "
                f"{task.key} ('{title}') needs from {other}.")
    if area in ("web", "mobile"):
        return (f"The user flows and screens of {other} that {task.key} ('{title}') must stay "
                f"consistent with.")
    return f"The interfaces and files of {other} that {task.key} ('{title}') builds on."


def _change_backlog(facts: Facts, squad: str, reqs: Sequence[Requirement],
                    change: str) -> BacklogOutput:
    rnd = facts.number("round", 2)
    parts = clauses(change)
    pieces = [parts[0], "; ".join(parts[1:])] if len(parts) >= 2 else [change.strip()]
    names = _Names()
    tasks: list[PlannedTask] = []
    for i, piece in enumerate(pieces, 1):
        ids = list(dict.fromkeys(m.upper() for m in REQ_ID.findall(piece)))
        if not ids:
            match = best_match(piece, reqs) or (reqs[0] if reqs else None)
            ids = [match.id] if match else []
        req = next((r for r in reqs if r.id in ids), None)
        area = _file_area(req, squad) if req else squad_area(squad)
        name = names.take(f"change{rnd} " + " ".join(content_words(piece)[:2]), f"c{i}")
        files = files_for(area, name, piece, req.is_functional if req else True, squad)
        brief = (f"Change request of round {rnd}: {piece.rstrip('.')}. Update the squad's work "
                 f"for {', '.join(ids) or 'the squad scope'} accordingly. "
                 + _how(area, files, ", ".join(ids) or squad))
        tasks.append(PlannedTask(key=f"T{i}", title=short_title(piece), requirements=ids,
                                 depends_on=[], expected_files=files, brief=brief, subtasks=[]))
    # Requirements the spec added or changed since the last round: each gets its own task.
    covered = {r for t in tasks for r in t.requirements}
    added, changed = facts.names("added"), facts.names("changed")
    moved = [r for r in reqs if r.id in added + changed and r.id not in covered]
    for req in moved:
        verb = "added" if req.id in added else "changed"
        area = _file_area(req, squad)
        name = names.take(req.text, req.id)
        files = files_for(area, name, req.text, req.is_functional)
        brief = (f"Requirement {req.id} was {verb} in the spec for round {rnd}: {req.text} "
                 + _how(area, files, req.id))
        tasks.append(PlannedTask(key=f"T{len(tasks) + 1}", title=short_title(req.text),
                                 requirements=[req.id], depends_on=[], expected_files=files,
                                 brief=brief, subtasks=[]))
    return BacklogOutput(tasks=tasks, dependency_requests=[],
                         notes=f"Round {rnd} of {squad}: {len(tasks)} task(s) for the change "
                               f"request.")


def fix_task(facts: Facts) -> FixTaskOutput:
    block = facts.text("block") or "block"
    description = " ".join((facts.text("description") or f"Block {block}").split())
    ids = [r.id for r in facts.requirements] or list(
        dict.fromkeys(m.upper() for m in REQ_ID.findall(description)))
    name = re.sub(r"[^a-z0-9-]+", "-", block.lower()).strip("-") or "block"
    path = f"fixes/{name}.md"
    blocked = facts.text("blocked_squad") or "the blocked squad"
    brief = (f"{blocked} is blocked: {description} Write {path}: the interface, data shapes and "
             f"behaviour the blocked task needs"
             + (f", naming {', '.join(ids)}" if ids else "")
             + ". The blocked task is reactivated when this fix passes QA.")
    summary = " ".join(description.split()[:10]).rstrip(",.;:")
    return FixTaskOutput(title=f"Fix {block}: {summary}", brief=brief,
                         requirements=ids, expected_files=[path])


def dependency_answer(facts: Facts) -> DependencyAnswer:
    need = facts.text("need") or "what the requesting squad needs"
    to_squad = facts.text("to_squad") or "the other squad"
    wanted = set(content_words(need))
    # The squad's scope first; the artifacts' own lines only when the scope says nothing.
    lines: list[str] = []
    picked: list[int] = []
    for text in (facts.text("scope"), "\n".join(facts.files.values())):
        lines = [ln.strip() for ln in text.splitlines()
                 if len(ln.split()) >= 3 and not ln.strip().startswith(("```", "|---", "###"))]
        scored = sorted(((len(wanted & set(content_words(ln))), i) for i, ln in enumerate(lines)),
                        key=lambda p: (-p[0], p[1]))
        picked = sorted(i for score, i in scored[:4] if score > 0)
        if picked:
            break
    paths = list(facts.names("artifacts")) or sorted(facts.files)
    if not picked:
        return DependencyAnswer(answer=(
            f"Nothing of {to_squad} in the context matches the need yet. {to_squad} delivers "
            f"it as part of its scope; build against the charter and ask again if a detail is "
            f"missing. Need: {' '.join(need.split())}"))
    quote = "\n".join(f"> {lines[i]}" for i in picked)
    answer = f"{to_squad} provides what is needed ({' '.join(need.split())[:200]}):\n\n{quote}\n"
    if paths:
        answer += "\nArtifacts to use: " + ", ".join(paths) + "\n"
    return DependencyAnswer(answer=answer)
