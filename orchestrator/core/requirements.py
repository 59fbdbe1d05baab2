"""Requirements of a spec as a person wrote it: stable ids for the items of a spec that gives
none (bullets, numbered items, table rows, else prose sentences, in any language), kept
across rounds, and what changed between two rounds' requirements.

The CTO agent and the simulated team both call `assign_requirement_ids`, so every provider
sees the same ids, and the ids are recorded in the spec review (`spec.reviewed`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.core.checks import (
    requirement_at_start,
    requirement_key,
    spec_requirement_ids,
    spec_requirement_lines,
)
from orchestrator.core.specs import without_front_matter

ASSIGNED_PREFIX = "FR-"
MAX_TEXT = 1000
SAME_REQUIREMENT = 0.6
"""How alike (difflib ratio) an edited item must be to its old text to keep its id."""

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_ITEM = re.compile(r"^(\s*)(?:[-*+\u2022]|\d{1,3}[.)]|[a-zA-Z][.)])\s+(?:\[[ xX]\]\s+)?(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")
_METADATA = re.compile(r"^\s*[^\s:|]{1,24}\s*:\s*\S")
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")


@dataclass(frozen=True)
class SpecItem:
    """One requirement of a spec without ids: its assigned id, its words, its section."""

    id: str
    text: str
    section: str = ""


def spec_has_ids(spec_text: str) -> bool:
    return bool(spec_requirement_ids(spec_text))


def assign_requirement_ids(spec_text: str,
                           previous: Mapping[str, str] | None = None) -> list[SpecItem]:
    """The requirements of a spec that defines no FR-/NFR- ids, each with a stable id.

    `previous` maps the ids of the last round to their text: an item whose text is the same
    (or alike, edited) keeps its id, a new item gets the next free number, so ids never move
    between requirements across rounds. A spec that defines its own ids gives [] here.
    """
    if spec_has_ids(spec_text):
        return []
    found = _spec_items(spec_text)
    return _stable_ids(found, dict(previous or {}))


def defined_requirements(spec_text: str) -> list[SpecItem]:
    """The requirements a spec defines with its own FR-/NFR- ids, in the spec's order, each in
    the spec's words: the whole item (wrapped lines joined, the id and what separates it left
    out) and its section; where the id opens a heading or a line that is no item, that line."""
    lines = spec_requirement_lines(spec_text)
    if not lines:
        return []
    found: dict[str, SpecItem] = {}
    for text, section in _spec_items(spec_text):
        opened = requirement_at_start(text)
        if opened and opened[0] in lines:
            found.setdefault(opened[0], SpecItem(opened[0], opened[1] or opened[0], section))
    headed, sections = _headed_requirements(spec_text)
    out = []
    for rid, line in lines.items():
        opened = requirement_at_start(line)
        rest = opened[1] if opened else line
        out.append(found.get(rid) or headed.get(rid)
                   or SpecItem(rid, rest[:MAX_TEXT] or rid, sections.get(rid, "")))
    return out


def _headed_requirements(spec_text: str) -> tuple[dict[str, SpecItem], dict[str, str]]:
    """Ids that open a heading (`### FR-1: Sign in`): the heading's words and the paragraph
    under it, in the section above it; and the section each defining line is in."""
    found: dict[str, SpecItem] = {}
    sections: dict[str, str] = {}
    section, current = "", ""
    words: list[str] = []
    for line in [*without_front_matter(spec_text).splitlines(), "# end"]:
        defined = requirement_at_start(line)
        if defined:
            sections.setdefault(defined[0], section)
        heading = _HEADING.match(line)
        if current and (heading or (not line.strip() and len(words) > 1)):
            text = ". ".join(w.rstrip(".") for w in (words[0], " ".join(words[1:])) if w)
            found.setdefault(current, SpecItem(current, text[:MAX_TEXT] + ".", section))
            current, words = "", []
        if heading:
            opened = requirement_at_start(heading.group(2))
            if opened:
                current, words = opened[0], [opened[1]]
            elif len(heading.group(1)) >= 2:
                section = heading.group(2).strip()
        elif current and line.strip():
            words.append(line.strip())
    return found, sections


def section_areas(items: list[SpecItem]) -> dict[str, str]:
    """Each item's section as its area of work, when the spec spreads its items over more
    than one section (one section for all says nothing about areas): whatever the language,
    the spec's own headings name its areas. Items outside any section get ''."""
    if len({i.section for i in items if i.section}) < 2:
        return {i.id: "" for i in items}
    return {i.id: i.section for i in items}


def requirement_changes(before: Mapping[str, str], after: Mapping[str, str]
                        ) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) ids between two rounds' {id: text}, in a stable order."""
    norm = {requirement_key(k): _norm(v) for k, v in before.items()}
    added = [i for i in after if requirement_key(i) not in norm]
    changed = [i for i in after
               if requirement_key(i) in norm and norm[requirement_key(i)] != _norm(after[i])]
    now = {requirement_key(i) for i in after}
    removed = [i for i in before if requirement_key(i) not in now]
    return added, changed, removed


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _spec_items(spec_text: str) -> list[tuple[str, str]]:
    """(text, section) of each list item or table row; prose sentences when there are none."""
    text = re.sub(r"<!--.*?-->", " ", without_front_matter(spec_text), flags=re.DOTALL)
    items: list[tuple[str, str]] = []
    prose: list[tuple[str, str]] = []
    section, fenced = "", False
    paragraph: list[str] = []
    current: list[str] | None = None
    item_indent = 0

    def close_paragraph() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            prose.extend((s, section) for s in _SENTENCE_END.split(joined) if len(s.split()) >= 3)
            paragraph.clear()

    def close_item() -> None:
        nonlocal current
        if current:
            items.append((" ".join(current), section))
        current = None

    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            close_item()
            close_paragraph()
            continue
        if fenced:
            continue
        heading = _HEADING.match(line)
        if heading:
            close_item()
            close_paragraph()
            if len(heading.group(1)) >= 2:
                section = heading.group(2).strip()
            continue
        if not line.strip():
            close_item()
            close_paragraph()
            continue
        item = _ITEM.match(line)
        if item and (current is None or len(item.group(1)) <= item_indent):
            close_item()
            close_paragraph()
            current, item_indent = [item.group(2).strip()], len(item.group(1))
        elif current is not None:  # a wrapped line or a nested bullet: part of the item
            current.append(item.group(2).strip() if item else line.strip())
        elif line.lstrip().startswith("|"):
            close_paragraph()
            if not _TABLE_RULE.match(line):
                cells = [c.strip() for c in line.strip().strip("|").split("|") if c.strip()]
                if cells:
                    items.append((" \u2014 ".join(cells), section))
        elif not (_METADATA.match(line) and len(line.split()) <= 6):
            paragraph.append(line.strip())
    close_item()
    close_paragraph()
    if items and _looks_like_table_header(items, text):
        items = items[1:]
    chosen = items or prose
    return [(" ".join(t.replace("**", "").split())[:MAX_TEXT], s) for t, s in chosen if t.strip()]


def _looks_like_table_header(items: list[tuple[str, str]], text: str) -> bool:
    """A spec whose only items are one table: its first row is the header, not a requirement."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.lstrip().startswith("|") and _TABLE_RULE.match(lines[i + 1]):
            first = " \u2014 ".join(c.strip() for c in line.strip().strip("|").split("|")
                                    if c.strip())
            return items[0][0] == first
    return False


def _stable_ids(found: list[tuple[str, str]], previous: dict[str, str]) -> list[SpecItem]:
    ids: list[str | None] = [None] * len(found)
    unused = dict(previous)
    by_text: dict[str, list[str]] = {}
    for rid, old in previous.items():
        by_text.setdefault(_norm(old), []).append(rid)
    for n, (text, _) in enumerate(found):
        same = by_text.get(_norm(text))
        if same:
            kept = same.pop(0)
            ids[n] = kept
            unused.pop(kept, None)
    # Edited items: the most alike old text first, each old id given once.
    pairs = sorted(((difflib.SequenceMatcher(None, _norm(found[n][0]), _norm(old)).ratio(),
                     n, rid) for n in range(len(found)) if ids[n] is None
                    for rid, old in unused.items()), reverse=True)
    for ratio, n, rid in pairs:
        if ratio >= SAME_REQUIREMENT and ids[n] is None and rid in unused:
            ids[n] = rid
            del unused[rid]
    numbers = [int(m.group(1)) for rid in previous
               if (m := re.fullmatch(re.escape(ASSIGNED_PREFIX) + r"(\d+)", rid))]
    next_number = max(numbers, default=0) + 1
    result = []
    for n, (text, section) in enumerate(found):
        given = ids[n]
        if given is None:
            given, next_number = f"{ASSIGNED_PREFIX}{next_number}", next_number + 1
        result.append(SpecItem(id=given, text=text, section=section))
    return result
