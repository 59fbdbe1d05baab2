"""Offline provider: reading the rendered brief of a call — facts, context sections, artifacts.

In process the agents hand the simulated team typed facts with every call. Behind an HTTP
server (the tests' stand-in for a model) only the text arrives: this module turns a brief
back into the same Facts, so the team's code reads facts alone either way."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator.core.messages import CONTEXT, OUTPUT_FILES, RETURN, TASK, Brief, TemplateError
from orchestrator.core.provider import Facts, RequirementFact, SquadFact
from orchestrator.sim.spec import (
    REQ_ID,
    Requirement,
    infer_area,
    parse_requirements,
)

# Headings the agents write into [RELEVANT COMPLETE CONTEXT]; any other `## x` is body text
# (a spec or an artifact has headings of its own).
# A heading names its section by its first words: `## Scope of backend` is a scope.
KNOWN_SECTIONS = (
    "facts", "spec", "requirements", "questions", "artifacts", "qa findings", "findings",
    "change request", "block", "scope", "charter", "proposal", "squads", "tasks", "delivered",
    "failed", "results", "reports", "squad reports", "modules", "dependency", "need", "request",
    "answers", "dependencies", "assignment",
)
_BY_LENGTH = sorted(KNOWN_SECTIONS, key=len, reverse=True)
_SECTION = re.compile(r"^##\s+([^#\n].*?)\s*$", re.MULTILINE)
_ARTIFACT = re.compile(r"^###\s+`?([^\s`]+)`?\s*$")
_BARE_FILES = ("makefile", "dockerfile", "procfile", "license", "readme", "jenkinsfile")
_EMPTY = ("", "-", "none", "(none)", "n/a", "[]")


@dataclass(frozen=True)
class Artifact:
    path: str
    content: str | None
    """None when the context names the file without showing it."""


@dataclass(frozen=True)
class CallContext:
    """A call's brief, taken apart: every accessor has a default, nothing here raises."""

    task: str = ""
    expected_return: str = ""
    expected_files: tuple[str, ...] = ()
    context: str = ""
    facts: Mapping[str, str] = field(default_factory=dict)
    sections: Mapping[str, str] = field(default_factory=dict)
    spec_path: str = ""
    spec_tail: str = ""
    """Everything after the `## Spec` heading: the spec plus any sections the agent put after."""
    occurrences: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Every body of each known heading, in order (a brief may nest another's context)."""

    def fact(self, key: str, default: str = "") -> str:
        value = self.facts.get(key, "").strip()
        return default if value.lower() in _EMPTY else value

    def fact_list(self, key: str) -> list[str]:
        return [v.strip() for v in re.split(r"[,\n]", self.fact(key))
                if v.strip() and v.strip().lower() not in _EMPTY]

    def fact_int(self, key: str, default: int) -> int:
        match = re.search(r"-?\d+", self.fact(key))
        return int(match.group()) if match else default

    def section(self, *names: str) -> str:
        for name in names:
            if self.sections.get(name, "").strip():
                return self.sections[name].strip()
        return ""

    def bullets(self, *names: str) -> list[str]:
        return bullet_items(self.section(*names))

    @property
    def project(self) -> str:
        return self.fact("project", "project")

    @property
    def squad(self) -> str:
        return self.fact("squad")

    def requirements(self) -> list[Requirement]:
        """The call's requirements: the Requirements section, else the spec's, filtered by the
        `requirements` fact when there is one."""
        listed = "\n\n".join(self.occurrences.get("requirements", ()))
        reqs = parse_requirements(listed) or parse_requirements(
            self.spec_tail or self.section("spec"))
        wanted = [r.upper() for r in self.fact_list("requirements") if REQ_ID.fullmatch(r)]
        if not wanted:
            return reqs
        by_id = {r.id: r for r in reqs}
        return [by_id.get(rid) or Requirement(rid, self.task or rid, infer_area(self.task))
                for rid in wanted]

    def artifacts(self) -> list[Artifact]:
        return parse_artifacts(self.section("artifacts"))

    def body_without(self, *names: str) -> str:
        """The context's sections except the named ones, joined (for id and quote searches)."""
        return "\n".join(body for name, body in self.sections.items() if name not in names)


def bullet_items(text: str) -> list[str]:
    """The items of a markdown list; wrapped lines join their item; no list: non-empty lines."""
    items: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$", line)
        if match:
            items.append(match.group(1).strip())
        elif line.strip() and items and line.startswith((" ", "\t")):
            items[-1] += " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            items.append(line.strip())
    return [i for i in items if i]


def parse_artifacts(text: str) -> list[Artifact]:
    """`### path` blocks (content up to the next such block, fences dropped) or `- path` lines."""
    artifacts: list[tuple[str, list[str]]] = []
    in_fence = False
    listed: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _ARTIFACT.match(line)
        if match and _looks_like_path(match.group(1)):
            artifacts.append((match.group(1), []))
        elif artifacts:
            artifacts[-1][1].append(line)
        else:
            item = re.match(r"^\s*[-*]\s+`?([^\s`]+)`?\s*$", line)
            if item and _looks_like_path(item.group(1)):
                listed.append(item.group(1))
    result = [Artifact(path, _unfence("\n".join(body))) for path, body in artifacts]
    return result + [Artifact(path, None) for path in listed]


def _looks_like_path(token: str) -> bool:
    name = token.rsplit("/", 1)[-1].lower()
    return "/" in token or "." in name.strip(".") or name in _BARE_FILES


def _unfence(body: str) -> str:
    lines = body.strip("\n").splitlines()
    if len(lines) >= 2 and lines[0].strip().startswith("```") and lines[-1].strip() == "```":
        lines = lines[1:-1]
    return "\n".join(lines).strip("\n") + ("\n" if lines else "")


def user_text(contents: Sequence[tuple[str, str]]) -> str:
    """The first user message's text (the brief; a re-ask's complaint after it is no brief
    and is answered from the brief, as the first time); all texts joined when there is none."""
    users = [text for role, text in contents if role == "user"]
    return users[0] if users else "\n\n".join(text for _, text in contents)


def parse_call(text: str) -> CallContext:
    """Take a brief apart; a text that is not a brief becomes a context without sections."""
    try:
        brief = Brief.parse(text)
    except TemplateError:
        brief = _lenient_brief(text)
    sections, occurrences, spec_path, spec_tail = _context_sections(brief.context)
    facts = _facts(sections.get("facts", ""))
    if not facts:
        facts = _facts(brief.context.split("\n##", 1)[0])
    return CallContext(task=brief.task, expected_return=brief.expected_return,
                       expected_files=tuple(p for p in brief.expected_files if p),
                       context=brief.context, facts=facts, sections=sections,
                       spec_path=spec_path, spec_tail=spec_tail, occurrences=occurrences)


def _lenient_brief(text: str) -> Brief:
    names = (TASK, CONTEXT, OUTPUT_FILES, RETURN)
    found: dict[str, str] = {}
    matches = [m for m in re.finditer(r"^\[([A-Z ]+)\]\s*$", text, re.MULTILINE)
               if m.group(1).strip() in names]
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        found.setdefault(match.group(1).strip(), text[match.end():end].strip())
    if not matches:
        found[CONTEXT] = text
    files = tuple(line.strip()[2:].strip() for line in found.get(OUTPUT_FILES, "").splitlines()
                  if line.strip().startswith("- "))
    return Brief(task=found.get(TASK, ""), context=found.get(CONTEXT, ""),
                 expected_return=found.get(RETURN, ""), expected_files=files)


def _section_key(heading: str) -> tuple[str, str] | None:
    name, _, arg = heading.partition(":")
    name = " ".join(name.lower().split())
    key = next((k for k in _BY_LENGTH if name == k or name.startswith(k + " ")), None)
    return (key, arg.strip()) if key else None


def _context_sections(
    context: str,
) -> tuple[dict[str, str], dict[str, tuple[str, ...]], str, str]:
    """Split at known `## Name` headings: Facts and Spec at their first occurrence, the others at
    their last (a spec may hold a `## Requirements` of its own before the agent's); and every
    occurrence's body, split at every known heading."""
    heads: list[tuple[int, int, str, str]] = []
    for match in _SECTION.finditer(context):
        found = _section_key(match.group(1))
        if found:
            heads.append((match.start(), match.end(), found[0], found[1]))
    every: dict[str, list[str]] = {}
    for i, (_, end, key, _arg) in enumerate(heads):
        stop = heads[i + 1][0] if i + 1 < len(heads) else len(context)
        every.setdefault(key, []).append(context[end:stop].strip())
    occurrences = {k: tuple(v) for k, v in every.items()}
    chosen: dict[str, tuple[int, int, str, str]] = {}
    for head in heads:
        key = head[2]
        if key not in chosen or key not in ("facts", "spec"):
            chosen[key] = head
    ordered = sorted(chosen.values())
    sections: dict[str, str] = {}
    for i, (_, end, key, _arg) in enumerate(ordered):
        stop = ordered[i + 1][0] if i + 1 < len(ordered) else len(context)
        sections[key] = context[end:stop].strip()
    spec = chosen.get("spec")
    spec_tail = context[spec[1]:].strip() if spec else ""
    return sections, occurrences, (spec[3] if spec else ""), spec_tail


def _facts(text: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(?:[-*]\s+)?([A-Za-z][\w -]{0,40}?)\s*:\s*(.*)$", line)
        if match:
            key = re.sub(r"[\s-]+", "_", match.group(1).strip().lower())
            facts.setdefault(key, match.group(2).strip())
    return facts


_LIST_FACTS = ("squads", "depends_on", "added", "changed", "removed", "delivered", "failed")
_NUMBER_FACTS = ("round", "max_rounds", "max_depth", "attempt")
_FAILED = re.compile(r"\b(failed|failure|rework[_ -]exhausted|exhausted|blocked|cancell?ed)\b",
                     re.IGNORECASE)
_DELIVERED = re.compile(r"\b(passed|delivered|done|completed?|deployed|merged|accepted)\b",
                        re.IGNORECASE)


def facts_of(ctx: CallContext) -> Facts:
    """The typed facts of a call that came as text only: what the agents hand the simulated
    team directly otherwise."""
    values: dict[str, str | int | tuple[str, ...]] = {
        key: ctx.fact(key) for key in ctx.facts if ctx.fact(key)}
    values.update({key: tuple(ctx.fact_list(key)) for key in _LIST_FACTS})
    values.update({key: ctx.fact_int(key, 0) for key in _NUMBER_FACTS if ctx.fact(key)})
    values.setdefault("title", ctx.task.split("\n", 1)[0][:200])
    values["spec"] = ctx.spec_tail or ctx.section("spec")
    values["questions"] = tuple(ctx.bullets("questions"))
    values["artifacts"] = tuple(a.path for a in ctx.artifacts())
    for key, sections in (("scope", ("scope",)), ("change_request", ("change request",)),
                          ("description", ("block",)), ("need", ("need", "request", "dependency"))):
        if key not in values and ctx.section(*sections):
            values[key] = ctx.section(*sections)
    values.setdefault("need", ctx.task)
    values.setdefault("description", ctx.task)
    values.setdefault("scope", ctx.body_without("facts", "need", "request", "artifacts"))
    if "delivered" not in ctx.facts and "failed" not in ctx.facts:
        values["delivered"], values["failed"] = _outcomes(ctx)
    return Facts(values=values,
                 requirements=tuple(RequirementFact(r.id, r.text, r.area)
                                    for r in _requirements(ctx)),
                 expected_files=ctx.expected_files,
                 files={a.path: a.content for a in ctx.artifacts() if a.content is not None},
                 findings=tuple(ctx.bullets("qa findings")),
                 # A proposal as written may have headings of its own (`## Squads`).
                 squads=tuple(parse_squads(ctx.body_without(
                     "facts", "spec", "requirements", "questions"))))


def _requirements(ctx: CallContext) -> list[Requirement]:
    """The call's requirements; a squad's scope that names ids narrows them to those."""
    reqs = ctx.requirements()
    if ctx.fact_list("requirements"):
        return reqs
    scoped = {m.upper() for m in REQ_ID.findall(ctx.section("scope"))}
    if not scoped:
        return reqs
    return [r for r in reqs if r.id in scoped] or reqs


def _outcomes(ctx: CallContext) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Delivered and failed work of the listed items: a `[status, ...]` tag first, else words
    like passed or rework_exhausted."""
    delivered = ctx.bullets("delivered")
    failed = ctx.bullets("failed")
    names = ("tasks", "squads", "modules", "results", "reports", "squad reports")
    for item in [i for name in names for i in ctx.bullets(name)]:
        tag = re.match(r"^\S+\s+\[([\w -]+)", item)
        status = tag.group(1) if tag else item
        if _FAILED.search(status):
            failed.append(item)
        elif _DELIVERED.search(status):
            delivered.append(item)
    return tuple(delivered), tuple(failed)


def parse_squads(text: str) -> list[SquadFact]:
    """Squads of a proposal as written: a table headed `squad`, or `- name: ...` lines."""
    squads: dict[str, SquadFact] = {}
    header: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if any(c.lower() == "squad" for c in cells):
                header = [c.lower() for c in cells]
                continue
            if header and len(cells) == len(header) and not set(stripped) <= set("|-: "):
                row = dict(zip(header, cells, strict=True))
                _add_squad(squads, row.get("squad", ""), row.get("scope", ""),
                           row.get("depends on", row.get("depends_on", "")),
                           row.get("requirements", " ".join(cells)))
            continue
        header = []
        match = re.match(r"^\s*[-*]\s+\**`?([a-z][a-z0-9-]{1,40})`?\**\s*[:\u2014-]\s*(.*)$", line)
        if match and REQ_ID.search(match.group(2)):
            deps = re.search(r"depends on:?\s*([a-z0-9, -]+)", match.group(2), re.I)
            _add_squad(squads, match.group(1), match.group(2), deps.group(1) if deps else "",
                       match.group(2))
    return list(squads.values())


def _add_squad(squads: dict[str, SquadFact], name: str, scope: str, deps: str, ids: str) -> None:
    name = name.strip().strip("`*").lower()
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,40}", name) or name in squads:
        return
    dep_names = [d for d in re.split(r"[,\s]+", deps.lower())
                 if re.fullmatch(r"[a-z][a-z0-9-]*", d) and d not in ("none", "and")]
    req_ids = list(dict.fromkeys(m.upper() for m in REQ_ID.findall(ids)))
    squads[name] = SquadFact(name=name, scope=" ".join(scope.split()),
                             depends_on=tuple(dep_names), requirements=tuple(req_ids))
