"""Offline provider: reading a spec without a model — requirements, areas, titles and slugs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AREAS = ("backend", "web", "mobile", "infrastructure", "general")

_AREA_PATTERNS: dict[str, tuple[str, ...]] = {
    "backend": (r"back-?end", r"apis?", r"rest", r"servers?", r"server-side", r"databases?",
                r"endpoints?", r"graphql", r"sql", r"storage"),
    "web": (r"web", r"web ?app", r"pages?", r"browsers?", r"ui", r"front-?end", r"website",
            r"html", r"css"),
    "mobile": (r"mobile", r"ios", r"android", r"app ?store", r"play store", r"smartphones?",
               r"tablets?", r"push notifications?", r"iphone"),
    "infrastructure": (r"infrastructure", r"infra", r"deploy\w*", r"ci", r"ci/cd", r"kubernetes",
                       r"k8s", r"terraform", r"docker", r"containers?", r"pipelines?", r"helm",
                       r"monitoring", r"backups?", r"as code"),
}
_AREA_RES = {
    area: re.compile(r"(?<![a-z0-9])(?:" + "|".join(pats) + r")(?![a-z0-9])")
    for area, pats in _AREA_PATTERNS.items()
}

REQ_ID = re.compile(r"\b(N?FR-\d+(?:\.\d+)*)\b", re.IGNORECASE)
_REQ_LINE = re.compile(
    r"^\s*(?:[-*+]\s+|\d+[.)]\s+)?(?:\*\*|__)?\[?(?P<id>N?FR-\d+(?:\.\d+)*)\]?(?![\w-])"
    r"(?:\*\*|__)?\s*(?:\((?P<area>[^)]*)\))?\s*(?:\*\*|__)?\s*[:.\-\u2013\u2014)]?\s*"
    r"(?P<text>.*)$",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s)")
_WORD = re.compile(r"[a-z][a-z0-9']*")
_VAGUE = ("fast", "quick", "quickly", "easy", "easily", "simple", "intuitive", "user-friendly",
          "modern", "scalable", "robust", "responsive", "secure", "reliable", "seamless")

STOP_WORDS = frozenset(re.findall(r"\S+", """
    a an the and or but nor of to in on for with by from as at is are be been being it its
    this that these those can could should must shall will would may might each every any
    all some one two three per via into onto than then so such not no only also both either
    there their they them we our us you your his her he she who which what when where while
    after before until within without between over under other others another same more most
    less least very just about up down out off again once here new old own i me my if else
    backend back-end web frontend front-end mobile app apps application system service
    server exposes expose lets let has have had shows show keeps keep makes make provides
    provide supports support allows allow uses use used using gets get takes take works work
    meets meet described stored recorded returns return lists create creates read reads
    update updates delete deletes move moves moved through given way ways able need needs
    needed want wants data information feature features requirement requirements e g etc
    i.e. e.g. thing things done do does last version versions
"""))


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    area: str

    @property
    def is_functional(self) -> bool:
        return not self.id.upper().startswith("NFR")


def unit(*parts: object) -> float:
    """A stable number in [0, 1) from the parts: the offline provider's only source of chance."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def area_scores(text: str) -> dict[str, int]:
    lowered = text.lower()
    return {area: len(rx.findall(lowered)) for area, rx in _AREA_RES.items()}


def area_of(text: str) -> str:
    """The area the words of a text point at most (ties: backend, web, mobile, infra); or ''."""
    scores = area_scores(text)
    best = max(scores.values())
    if best == 0:
        return ""
    return next(area for area in _AREA_PATTERNS if scores[area] == best)


def squad_area(squad: str) -> str:
    """The area a squad name stands for: `web-basic` -> web, `platform` -> general."""
    name = re.sub(r"-(basic|advanced|core|extra|\d+)$", "", squad.lower().strip())
    if name in AREAS:
        return name
    if name in ("platform", ""):
        return "general"
    return area_of(name.replace("-", " ")) or "general"


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def content_words(text: str) -> list[str]:
    """The words that carry meaning: no stop words, no numbers, parentheticals dropped."""
    text = re.sub(r"\([^)]*\)", " ", text)
    return [w.strip("'") for w in words(text) if w.strip("'") not in STOP_WORDS and len(w) > 1]


def clauses(text: str) -> list[str]:
    """The clauses of a requirement: split at semicolons and sentence ends."""
    parts = re.split(r";\s+|(?<=[a-z0-9)])\.\s+(?=[A-Z])", text.strip())
    return [p.strip().rstrip(".;") for p in parts if p.strip().rstrip(".;")]


def short_title(text: str, max_words: int = 12) -> str:
    """A task title from a requirement: its first clause, at most `max_words` words."""
    first = (clauses(text) or [text.strip() or "Untitled work"])[0]
    tokens = first.split()
    title = " ".join(tokens[:max_words]).rstrip(",:;.")
    if len(tokens) > max_words:
        title += " ..."
    return title[:1].upper() + title[1:]


def slug(text: str, max_words: int = 3, sep: str = "_") -> str:
    """A file-name slug: the first content words of the first clause; `item` if none."""
    first = (clauses(text) or [text])[0]
    chosen = content_words(first)[:max_words] or content_words(text)[:max_words]
    cleaned = [re.sub(r"[^a-z0-9]", "", w) for w in chosen]
    result = sep.join(w for w in cleaned if w)
    if not result or not result[0].isalpha():
        result = "item" + (sep + result if result else "")
    return result


def singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "uses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def decapitalize(text: str) -> str:
    """`Tasks move` -> `tasks move`, but `API responses` stays as it is."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


def md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def infer_area(text: str, headings: Sequence[str] = (), explicit: str = "") -> str:
    """Explicit area, else the nearest heading that names one, else the text's words."""
    explicit = explicit.strip().lower()
    if explicit in AREAS:
        return explicit
    for heading in headings:
        found = area_of(heading)
        if found:
            return found
    return area_of(text) or "general"


def parse_requirements(text: str) -> list[Requirement]:
    """Every FR-n/NFR-n item of a markdown text, with wrapped lines, in order (first wins)."""
    found: list[Requirement] = []
    seen: set[str] = set()
    stack: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        heading = _HEADING.match(line)
        item = _line_requirement(heading.group(2)) if heading else None
        if heading:
            level = len(heading.group(1))
            stack = [(lvl, h) for lvl, h in stack if lvl < level]
            if item is None:
                stack.append((level, heading.group(2)))
                continue
            # `### FR-1: Title` and the paragraph under it are one requirement.
            while i < len(lines) and not lines[i].strip():
                i += 1
            paragraph = []
            while i < len(lines) and lines[i].strip() and not _HEADING.match(lines[i]):
                paragraph.append(lines[i].strip())
                i += 1
            title = item[2].rstrip(". ")
            item = (item[0], item[1], ". ".join(p for p in (title, " ".join(paragraph)) if p))
        else:
            item = _table_requirement(line) or _line_requirement(line)
        if item is None:
            continue
        req_id, area, body = item
        if not heading and not line.lstrip().startswith("|"):
            while i < len(lines) and _continues(lines[i]):
                body += " " + lines[i].strip()
                i += 1
        body = " ".join(body.replace("**", "").split())
        if req_id in seen or not body:
            continue
        seen.add(req_id)
        near = [h for lvl, h in reversed(stack) if lvl >= 2]
        found.append(Requirement(req_id, body, infer_area(body, near, area)))
    return found


def _line_requirement(line: str) -> tuple[str, str, str] | None:
    match = _REQ_LINE.match(line)
    if match is None:
        return None
    return match.group("id").upper(), match.group("area") or "", match.group("text").strip()


def _table_requirement(line: str) -> tuple[str, str, str] | None:
    if not line.lstrip().startswith("|"):
        return None
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    ids = [c for c in cells if re.fullmatch(r"N?FR-\d+(?:\.\d+)*", c, re.IGNORECASE)]
    if not ids:
        return None
    rest = [c for c in cells if c != ids[0]]
    area = next((c.lower() for c in rest if c.lower() in AREAS), "")
    texts = [c for c in rest if c.lower() not in AREAS]
    return ids[0].upper(), area, max(texts, key=len, default="")


def _continues(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not (
        _HEADING.match(line) or _BULLET.match(line) or stripped.startswith(("|", "```"))
        or _REQ_LINE.match(line)
    )


def spec_title(spec: str, default: str = "Untitled spec") -> str:
    for line in spec.splitlines():
        match = _HEADING.match(line)
        if match and len(match.group(1)) == 1:
            return match.group(2).strip() or default
    for line in spec.splitlines():
        match = _HEADING.match(line)
        if match:
            return match.group(2).strip() or default
    return default


def spec_sections(spec: str) -> list[tuple[str, str]]:
    """(heading, body) pairs of a markdown text; the text before any heading has heading ''."""
    result: list[tuple[str, list[str]]] = [("", [])]
    for line in spec.splitlines():
        match = _HEADING.match(line)
        if match:
            result.append((match.group(2).strip(), []))
        else:
            result[-1][1].append(line)
    return [(h, "\n".join(body).strip()) for h, body in result]


def spec_summary(spec: str, max_words: int = 60) -> str:
    """The spec's opening paragraph (Context/Overview first), at most a few sentences."""
    sections = spec_sections(spec)
    preferred = [b for h, b in sections if re.search(
        r"context|overview|summary|introduction|background|goal|purpose|problem", h, re.I)]
    plain = [b for _, b in sections if not REQ_ID.search(b)]
    candidates = preferred + plain + [b for _, b in sections]
    for body in candidates:
        for para in re.split(r"\n\s*\n", body):
            lines = [ln for ln in para.splitlines()
                     if ln.strip() and not re.match(r"^\s*[A-Za-z][\w -]{0,20}:\s", ln)
                     and not _BULLET.match(ln) and not ln.lstrip().startswith("|")]
            text = " ".join(" ".join(lines).split())
            if len(text.split()) >= 5:
                return _limit_words(text, max_words)
    return ""


def _limit_words(text: str, max_words: int) -> str:
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out: list[str] = []
    for sentence in sentences:
        if out and len(" ".join(out + [sentence]).split()) > max_words:
            break
        out.append(sentence)
    result = " ".join(out)
    tokens = result.split()
    return result if len(tokens) <= max_words else " ".join(tokens[:max_words]) + " ..."


def scope_notes(spec: str) -> list[str]:
    """Sentences about scope (out of scope, non-goals) and the acceptance criteria."""
    notes: list[str] = []
    flat = " ".join(spec.split())
    for sentence in re.split(r"(?<=[.!?])\s+", flat):
        if re.search(r"out of scope|not in scope|non-goals?|later round", sentence, re.I):
            notes.append("Out of scope: " + sentence.strip())
    for heading, body in spec_sections(spec):
        if re.search(r"accept", heading, re.I) and body:
            notes.append("Acceptance: " + " ".join(body.split()))
    return notes


def open_questions(requirements: Iterable[Requirement]) -> list[str]:
    questions: list[str] = []
    reqs = list(requirements)
    if not reqs:
        return ["The spec lists no FR-n/NFR-n items: which behaviours must the delivery have, "
                "and how will you accept them?"]
    for req in reqs:
        has_number = bool(re.search(r"\d", req.text))
        vague = [w for w in _VAGUE
                 if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", req.text, re.I)]
        if not req.is_functional and not has_number:
            questions.append(f"{req.id}: what measurable target (a number and a unit) makes "
                             f"'{short_title(req.text, 10)}' testable?")
        elif vague and not has_number:
            questions.append(f"{req.id}: '{vague[0]}' is not measurable; what target should QA "
                             f"check?")
    return questions


def best_match(text: str, candidates: Sequence[Requirement]) -> Requirement | None:
    """The requirement sharing most content words with a text (first on ties)."""
    wanted = set(content_words(text))
    best: Requirement | None = None
    best_score = 0
    for req in candidates:
        score = len(wanted & set(content_words(req.text)))
        if score > best_score:
            best, best_score = req, score
    return best
