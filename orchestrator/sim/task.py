"""Offline provider: what a Dev task is about — entity, fields, statuses, auth, limits."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from orchestrator.sim.brief import CallContext
from orchestrator.sim.spec import clauses, content_words, singular

_NOT_ENTITY = frozenset(re.findall(r"\S+", """
    rest api apis http https json error errors status statuses code codes change changes
    activity history newest oldest first last sign signs signed email emails password
    passwords token tokens session sessions response responses request requests ms
    percentile version versions column columns board boards page pages detail details filter
    filters filtered hashed hash salted slow logged concurrent contrast keyboard drag team
    teams one whole described code infrastructure command health check deployable deploy
    assignee assignees due date dates time times wait waits firefox chrome safari edge wcag
    browser browsers expire expires expired expiry
"""))
_ACTORS = ("user", "member", "people", "person", "visitor", "admin", "administrator")


@dataclass(frozen=True)
class Work:
    """What a task's files are about, derived once from its brief."""

    ids: tuple[str, ...]
    title: str
    text: str
    task_text: str
    squad: str
    project: str
    entity: str
    fields: tuple[str, ...]
    statuses: tuple[str, ...]
    auth: bool
    ttl_seconds: int
    assign: bool
    search: bool
    history: bool
    board: bool
    accessibility: bool
    latency_ms: int
    error_code: int
    findings: tuple[str, ...]
    block: str
    files: tuple[str, ...]

    @property
    def ids_text(self) -> str:
        return ", ".join(self.ids) or "the task"

    @property
    def store(self) -> bool:
        """Whether the module keeps records: not for a requirement that is only about auth."""
        return not (self.auth and self.entity in ("item", "user")) or bool(self.assign)

    @property
    def class_name(self) -> str:
        return "".join(p.capitalize() for p in self.entity.split("_")) or "Item"

    @property
    def main_field(self) -> str:
        return next((f for f in self.fields if f not in ("status", "assignee")), self.fields[0])


def describe_work(ctx: CallContext) -> Work:
    reqs = ctx.requirements()
    text = " ".join(r.text for r in reqs) or ctx.task or "the task"
    everything = f"{ctx.task} {text}"  # the task first: a change request overrides the spec
    lowered = everything.lower()
    fields = _fields(text)
    statuses = _statuses(text)
    board = bool(re.search(r"\bboard|\bcolumns?\b|\bdrag", lowered))
    if board and not statuses:
        statuses = ("todo", "in_progress", "done")
    assign = bool(re.search(r"\bassign", lowered))
    if statuses and "status" not in fields:
        fields += ("status",)
    if assign and "assignee" not in fields:
        fields += ("assignee",)
    ttl = re.search(r"expir\w*\s+(?:after|in|within)?\s*(\d+)\s*(second|minute|hour|day)", lowered)
    unit_s = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    latency = re.search(r"(\d+)\s*ms\b", lowered)
    code = re.search(r"\b([45]\d\d)\s+error|error\s+\(?([45]\d\d)\b", lowered)
    return Work(
        ids=tuple(r.id for r in reqs if r.id), title=_title(ctx.task) or _title(text),
        text=text, task_text=ctx.task, squad=ctx.squad or "squad", project=ctx.project,
        entity=_entity(text), fields=fields, statuses=statuses,
        auth=bool(re.search(r"password|sign[ -]?in|log[ -]?in|\btokens?\b|authenticat", lowered)),
        ttl_seconds=int(ttl.group(1)) * unit_s[ttl.group(2)] if ttl else 3600,
        assign=assign, search=bool(re.search(r"\bfilter|\bsearch|\bfind\b", lowered)),
        history=bool(re.search(r"histor|activity|audit", lowered)),
        board=board,
        accessibility=bool(re.search(r"wcag|accessib|keyboard|contrast|screen reader", lowered)),
        latency_ms=int(latency.group(1)) if latency else 0,
        error_code=int(next(g for g in code.groups() if g)) if code else 400,
        findings=tuple(ctx.bullets("qa findings", "findings")),
        block=" ".join(ctx.section("block").split()) or ctx.fact("block"),
        files=ctx.expected_files)


def _title(text: str, max_words: int = 14) -> str:
    """A file's title: the task's first line, without list or heading marks, a few words."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(?:#+|[-*]|(?:task|title)\s*:)\s*", "", line, flags=re.I)
    tokens = line.split()[:max_words]
    return " ".join(tokens).rstrip(",:;. ") if tokens else ""


def _entity(text: str) -> str:
    """The thing a requirement is about: its first telling noun, people only as a last resort."""
    names = [re.sub(r"[^a-z]", "", singular(w))
             for w in content_words(clauses(text)[0] if clauses(text) else text)]
    names = [n for n in names if len(n) > 2 and n not in _NOT_ENTITY]
    things = [n for n in names if n not in _ACTORS]
    return (things or names or ["item"])[0]


def _identifier(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def _fields(text: str) -> tuple[str, ...]:
    for group in re.findall(r"\(([^)]*)\)", text):
        items = [i.strip() for i in re.split(r",|\band\b|\bor\b", group) if i.strip()]
        if len(items) >= 2 and all(len(i.split()) <= 3 for i in items):
            names = [re.sub(r"[^a-z0-9]+", "_", i.lower()).strip("_") for i in items]
            valid = [_identifier(n) for n in names if n and n[0].isalpha()]
            if len(valid) >= 2:
                return tuple(dict.fromkeys(valid))[:8]
    return ("name", "description")


def _statuses(text: str) -> tuple[str, ...]:
    match = re.search(r"status(?:es)?\s+(?:are\s+|is\s+|of\s+)?((?:[a-z][\w-]*,\s*)+"
                      r"[a-z][\w-]*,?\s+(?:and|or)\s+[a-z][\w-]*)", text.lower())
    if not match:
        return ()
    items = [i.strip() for i in re.split(r",|\band\b|\bor\b", match.group(1)) if i.strip()]
    return tuple(dict.fromkeys(re.sub(r"[^a-z0-9]+", "_", i) for i in items))
