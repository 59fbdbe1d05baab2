"""What a task's requirements ask a piece of code to do, read from their words: the thing
it keeps, its fields, allowed values, numeric limits and operations (plain English only)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# Generic English only: the simulator must know no product's vocabulary.
STOP = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "by", "from", "at", "as", "is", "are", "be", "been", "being", "it", "its", "this", "that", "these", "those", "their", "there", "then", "than", "so", "such", "can", "may", "must", "should", "shall", "will", "would", "could", "any", "all", "each", "every", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "some", "no", "not", "only", "also", "more", "most", "less", "least", "over", "under", "within", "without", "into", "onto", "per", "via", "up", "down", "out", "own", "other", "same", "new", "old", "first", "last", "under", "above", "below", "before", "after", "between", "about", "across", "through", "while", "when", "where", "which", "who", "whom", "whose", "what", "how", "do", "does", "did", "done", "has", "have", "had", "make", "makes", "made", "let", "lets", "get", "gets", "use", "uses", "used", "user", "users", "people", "person", "team", "someone", "anyone", "they", "them", "we", "our", "you", "your", "he", "she", "his", "her", "i", "my", "me", "app", "system", "service", "api", "page", "screen", "data", "way", "time", "part", "kind", "type", "set", "sets", "list", "lists", "show", "shows", "backend", "frontend", "web", "mobile", "rest", "http", "server", "client", "exposes", "expose", "provides", "provide", "returns", "return", "support", "supports", "allow", "allows", "able", "via", "using"])
_NOT_NOUN = re.compile(r".{3,}(ed|ing|ly)$")
_NOT_A_LIMIT = frozenset({"error", "errors", "status", "code", "response", "fr", "nfr"})

VERBS: dict[str, tuple[str, ...]] = {
    "add": ("create", "add", "register", "submit", "post", "enter", "record", "book", "open",
            "upload", "store", "save", "import", "capture", "write"),
    "update": ("update", "edit", "change", "modify", "move", "rename", "assign", "set", "mark",
               "edit", "toggle", "approve", "reject", "close", "complete"),
    "remove": ("delete", "remove", "archive", "cancel", "discard", "revoke", "purge"),
    "find": ("filter", "search", "find", "look", "query", "match", "select", "browse"),
    "sort": ("sort", "order", "rank", "newest", "oldest", "latest", "recent", "top"),
    "count": ("count", "total", "sum", "summary", "summarise", "summarize", "report",
              "statistics", "stats", "average", "metric", "metrics", "dashboard"),
    "history": ("history", "audit", "log", "logged", "trail", "changes", "activity",
                "journal", "timeline", "versions"),
    "validate": ("refuse", "refused", "reject", "rejected", "invalid", "valid", "validate",
                 "allowed", "only", "must", "required", "error", "errors", "deny", "denied"),
}
UNITS = {"ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001, "s": 1.0, "second": 1.0,
         "seconds": 1.0, "minute": 60.0, "minutes": 60.0, "hour": 3600.0, "hours": 3600.0,
         "day": 86400.0, "days": 86400.0, "week": 604800.0, "weeks": 604800.0}
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_LIST = re.compile(r"\b([a-z][\w-]*)((?:,\s*[a-z][\w-]*)+)(?:,)?\s+(?:and|or)\s+([a-z][\w-]*)",
                   re.IGNORECASE)
_PAREN = re.compile(r"\(([^()]{3,200})\)")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:to\s+(\d+(?:\.\d+)?)\s*)?%?\s*([a-z]+)?",
                     re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    low: float
    high: float
    unit: str
    """The word after the number ("hours", "items", ...) or empty."""


@dataclass(frozen=True)
class Behaviour:
    thing: str
    fields: tuple[str, ...]
    choices: tuple[str, ...]
    choice_field: str
    limit: Limit | None
    operations: tuple[str, ...]

    @property
    def kind(self) -> str:
        """A short signature: specs that ask for different things get different code."""
        return "+".join(self.operations) + (f"|{len(self.choices)} choices" if self.choices
                                            else "") + ("|limit" if self.limit else "")


def slug(text: str, sep: str = "_") -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return sep.join(words)[:40].strip(sep) or "item"


def singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def content_words(text: str) -> list[str]:
    return [w.lower().strip("'-") for w in _WORD.findall(text)
            if len(w) > 2 and w.lower() not in STOP]


def _listed(text: str) -> list[list[str]]:
    lists = []
    for match in _LIST.finditer(text):
        items = [match.group(1), *re.findall(r"[\w-]+", match.group(2)), match.group(3)]
        lists.append([slug(i) for i in items])
    return lists


def derive(texts: Sequence[str], title: str = "") -> Behaviour:
    """The behaviour of the code that would meet these requirement texts."""
    text = " ".join(texts) or title
    words = content_words(text)
    verbs = {form for w in _WORD.findall(text) for form in _forms(w.lower())}
    all_verbs = {v for vs in VERBS.values() for v in vs}
    def is_verb(w: str) -> bool:
        return bool(_forms(w) & all_verbs)

    nouns = [singular(w) for w in words if not is_verb(w) and not _NOT_NOUN.match(w)]
    # The thing is what the verbs act on: the first noun after each verb, most often first.
    acted_on = []
    tokens = [t.lower() for t in _WORD.findall(text)]
    noun_set = set(nouns)
    for i, w in enumerate(tokens):
        if not is_verb(w):
            continue
        rest = tokens[i + 1:]
        while rest and rest[0] in STOP:  # past "a", "the", "each", ...
            rest = rest[1:]
        run = []  # adjacent nouns make a compound whose head is the last: "seed tray" -> tray
        for n in rest[:2]:
            if singular(n) not in noun_set or n in STOP:
                break
            run.append(singular(n))
        acted_on += run[-1:]
    pool = acted_on or nouns
    counts = Counter(pool)
    thing = max(counts, key=lambda w: (counts[w], -pool.index(w))) if counts else slug(title)
    fields: list[str] = []
    for group in _PAREN.findall(text):
        parts = [slug(p) for p in re.split(r",|\band\b|\bor\b", group) if slug(p) != "item"]
        if 2 <= len(parts) <= 8 and not fields:
            fields = parts
    lists = [items for items in _listed(text) if items != fields[:len(items)]
             and sum(i in all_verbs or i == "read" for i in items) * 2 < len(items)]
    choices = tuple(dict.fromkeys(lists[0])) if lists else ()
    choice_field = ""
    if choices:
        before = text.lower().split(choices[0].replace("_", " "), 1)[0].split()
        candidates = [singular(w) for w in before[-3:] if w.isalpha() and w not in STOP]
        choice_field = slug(candidates[-1]) if candidates else "kind"
    if not fields:
        fields = ["name"] + [n for n in dict.fromkeys(nouns) if n != thing][:2]
    fields = [f for f in dict.fromkeys(slug(f) for f in fields) if f != choice_field]
    operations = ["add"] + [op for op in ("update", "remove", "find", "sort", "count", "history")
                            if any(v in verbs for v in VERBS[op])]
    if choices or any(v in verbs for v in VERBS["validate"]):
        operations.append("validate")
    return Behaviour(thing=slug(thing), fields=tuple(fields[:6]), choices=choices[:8],
                     choice_field=choice_field, limit=_limit(text), operations=tuple(operations))


def _forms(word: str) -> set[str]:
    """A word and its bare forms: counts, counted -> count (so verbs match however inflected)."""
    forms = {word}
    for suffix in ("s", "es", "ed", "d", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            forms.add(word[:-len(suffix)])
    return forms


def _limit(text: str) -> Limit | None:
    for match in _NUMBER.finditer(text):
        low = float(match.group(1))
        high = float(match.group(2)) if match.group(2) else low
        low = low if match.group(2) else 0.0  # one number is an upper bound: "within 30 s"
        unit = (match.group(3) or "").lower()
        if unit in _NOT_A_LIMIT or low == 0 and high == 0:
            continue
        if re.fullmatch(r"(fr|nfr)-?", text[max(0, match.start() - 4):match.start()].lower()
                        .strip()):
            continue
        return Limit(low=low, high=high, unit=unit if unit not in STOP else "")
    return None


def seconds(limit: Limit) -> float | None:
    factor = UNITS.get(limit.unit)
    return None if factor is None else limit.high * factor
