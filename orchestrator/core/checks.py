"""The content rules every provider's answers must keep, as pure checks returning what is missing.

A schema says an answer has the right shape; these say it does its job: a spec review keeps
every requirement the spec lists, a proposal (and the Charter made from it) gives every
requirement exactly one squad, a backlog covers its squad's requirements. Each check returns
one line per thing that is wrong (empty: the rule holds), so a failed check can be re-asked
naming exactly what to fix, and nothing that breaks a rule is ever written as a result.
Requirement ids are compared trimmed and case-insensitively, as people write them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_SPEC_REQUIREMENT = re.compile(
    r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|\|\s*)?(?:\*\*|__)?\[?(N?FR-\d+(?:\.\d+)*)\]?(?![\w-])",
    re.IGNORECASE)
"""An FR-/NFR- id where a requirement is defined: opening a line, a list item, a heading or a
table cell (ids merely mentioned inside a sentence do not define one)."""


_AFTER_ID = re.compile(r"[\s*_:.)\]|\u2014-]*")


def requirement_at_start(text: str) -> tuple[str, str] | None:
    """The FR-/NFR- id a line (an item's text, a heading's words) opens with, normalised,
    and the words after it with what separates them left out; None when it opens with none."""
    match = _SPEC_REQUIREMENT.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    after = _AFTER_ID.match(rest)
    return requirement_key(match.group(1)), rest[after.end() if after else 0:].strip(" |")


def requirement_key(rid: str) -> str:
    """How ids are compared: trimmed, upper case (`fr-1 ` and `FR-1` are one requirement)."""
    return rid.strip().upper()


def spec_requirement_ids(spec_text: str) -> list[str]:
    """The FR-/NFR- ids a spec defines, in order of first appearance, normalised."""
    return list(spec_requirement_lines(spec_text))


def spec_requirement_lines(spec_text: str) -> dict[str, str]:
    """Each id the spec defines and the line that defines it (trimmed): what a re-ask quotes
    so that a model can copy what it left out."""
    found: dict[str, str] = {}
    for line in spec_text.splitlines():
        match = _SPEC_REQUIREMENT.match(line)
        if match:
            found.setdefault(requirement_key(match.group(1)), line.strip())
    return found


def missing_from_review(spec_requirements: Iterable[str],
                        review_requirements: Iterable[str]) -> list[str]:
    """Requirements the spec lists that the review left out, in the spec's order."""
    reviewed = {requirement_key(r) for r in review_requirements}
    missing: dict[str, None] = {}
    for rid in spec_requirements:
        if requirement_key(rid) not in reviewed:
            missing.setdefault(requirement_key(rid), None)
    return list(missing)


def ownership_problems(requirements: Iterable[str],
                       squads: Mapping[str, Sequence[str]]) -> list[str]:
    """Every requirement must have exactly one squad: one line per unowned or shared one.

    `squads` maps a squad's name to the requirement ids it delivers; ids no requirement has
    are not this rule's business (the agents drop them).
    """
    owners: dict[str, list[str]] = {}
    for squad, reqs in squads.items():
        for rid in dict.fromkeys(requirement_key(r) for r in reqs):
            owners.setdefault(rid, []).append(squad)
    problems: list[str] = []
    for rid in dict.fromkeys(requirement_key(r) for r in requirements):
        have = owners.get(rid, [])
        if not have:
            problems.append(f"{rid} has no squad")
        elif len(have) > 1:
            problems.append(f"{rid} is given to {len(have)} squads ({', '.join(have)}); "
                            "give it to one")
    return problems


def uncovered_by_backlog(squad_requirements: Iterable[str],
                         task_requirements: Iterable[Iterable[str]]) -> list[str]:
    """The squad's requirements that no task (or subtask) of its backlog covers."""
    covered = {requirement_key(r) for reqs in task_requirements for r in reqs}
    missing: dict[str, None] = {}
    for rid in squad_requirements:
        if requirement_key(rid) not in covered:
            missing.setdefault(requirement_key(rid), None)
    return list(missing)
