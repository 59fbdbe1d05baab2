"""The simulated Dev's Python: a module that does what the plan says and its pytest tests,
which load the module by path so they pass from any folder."""

from __future__ import annotations

import posixpath

from orchestrator.sim.code_model import CodePlan, number


def module(plan: CodePlan) -> str:
    p, bug = plan, plan.defect
    lines = [f'"""{p.title} ({p.ids_text})."""', "", "from __future__ import annotations", "",
             f"FIELDS = {tuple(p.fields)!r}"]
    if p.choices:
        lines.append(f"ALLOWED = {tuple(p.choices)!r}")
    if p.limit:
        lines += [f"LOW, HIGH = {number(p.limit.low)}, {number(p.limit.high)}"
                  + (f"  # {p.limit.unit}" if p.limit.unit else "")]
    lines += ["", "", "class Refused(ValueError):",
              '    """A request the requirements do not allow."""', "", "",
              f"class {p.name}:", f'    """Keeps {p.behaviour.thing} records ({p.ids_text})."""',
              "", "    def __init__(self) -> None:",
              "        self._items: dict[int, dict[str, str]] = {}",
              "        self._order: list[int] = []",
              "        self._log: list[tuple[int, str]] = []", "        self._next = 1", "",
              "    def add(self, values: dict[str, str]) -> int:",
              "        missing = [f for f in FIELDS if not str(values.get(f, '')).strip()]",
              "        if missing:",
              "            raise Refused('missing: ' + ', '.join(missing))"]
    record = "{f: str(values[f]) for f in FIELDS}"
    if bug == "add":
        record = "{f: ('' if i == 0 else str(values[f])) for i, f in enumerate(FIELDS)}"
    lines.append(f"        record = {record}")
    if p.choices:
        lines += [f"        record[{p.choice_field!r}] = self._allowed("
                  f"values.get({p.choice_field!r}, ALLOWED[0]))"]
    lines += ["        ident = self._next", "        self._next += 1",
              "        self._items[ident] = record", "        self._order.append(ident)",
              "        self._log.append((ident, 'added'))", "        return ident", "",
              "    def get(self, ident: int) -> dict[str, str]:",
              "        if ident not in self._items:",
              "            raise Refused(f'no record {ident}')",
              "        return dict(self._items[ident])", "",
              "    def all(self) -> list[int]:", "        return list(self._order)"]
    if p.choices:
        check = "True" if bug == "validate" else "value in ALLOWED"
        lines += ["", "    def _allowed(self, value: str) -> str:", f"        if not ({check}):",
                  "            raise Refused(f'{value!r} is not one of ' + ', '.join(ALLOWED))",
                  "        return value"]
    if p.has("update"):
        keep = "pass" if bug == "update" else "self._items[ident].update(changed)"
        lines += ["", "    def update(self, ident: int, changes: dict[str, str]) -> dict[str, str]:",
                  "        current = self.get(ident)",
                  "        unknown = sorted(set(changes) - set(current))",
                  "        if unknown:", "            raise Refused('unknown: ' + ', '.join(unknown))",
                  "        changed = {k: str(v) for k, v in changes.items()}"]
        if p.choices:
            lines += [f"        if {p.choice_field!r} in changed:",
                      f"            self._allowed(changed[{p.choice_field!r}])"]
        lines += [f"        {keep}", "        self._log.append((ident, 'changed ' + ', '.join(sorted(changed))))",
                  "        return {**current, **changed}"]
    if p.has("remove"):
        lines += ["", "    def remove(self, ident: int) -> None:", "        self.get(ident)",
                  "        del self._items[ident]"]
        if bug != "remove":
            lines.append("        self._order.remove(ident)")
        lines.append("        self._log.append((ident, 'removed'))")
    if p.has("find"):
        test = "True" if bug == "find" else "all(self._items[i].get(k) == v for k, v in criteria.items())"
        lines += ["", "    def find(self, criteria: dict[str, str]) -> list[int]:",
                  f"        return [i for i in self._order if {test}]"]
    if p.has("sort"):
        order = "" if bug == "sort" else "[::-1]"
        lines += ["", "    def newest_first(self) -> list[int]:",
                  f"        return list(self._order){order}"]
    if p.has("count"):
        field = p.choice_field if p.choices else p.fields[0]
        extra = " + 1" if bug == "count" else ""
        lines += ["", "    def count_by(self) -> dict[str, int]:", "        counts: dict[str, int] = {}",
                  "        for i in self._order:", f"            key = self._items[i][{field!r}]",
                  f"            counts[key] = counts.get(key, 0) + 1{extra}", "        return counts"]
    if p.has("history"):
        order = "" if bug == "history" else "[::-1]"
        lines += ["", "    def history(self, ident: int) -> list[str]:",
                  f"        return [what for i, what in self._log if i == ident]{order}"]
    if p.limit:
        upper = "<" if bug == "limit" else "<="
        lines += ["", "", "def within_limit(value: float) -> bool:",
                  f'    """Between {number(p.limit.low)} and {number(p.limit.high)}'
                  f'{" " + p.limit.unit if p.limit.unit else ""} ({p.ids_text})."""',
                  f"    return LOW <= value {upper} HIGH"]
    return "\n".join(lines) + "\n"


def tests(plan: CodePlan, test_path: str, module_path: str) -> str:
    p = plan
    rel = posixpath.relpath(module_path, posixpath.dirname(test_path) or ".")
    mod_name = "sim_" + module_path.replace("/", "_").removesuffix(".py").replace("-", "_")
    a, b = p.sample(1), p.sample(2)
    first = p.fields[0]
    out = [f'"""Tests of {p.title} ({p.ids_text})."""', "", "from __future__ import annotations",
           "", "import importlib.util", "import sys", "from pathlib import Path", "",
           "import pytest", "",
           f"_SPEC = importlib.util.spec_from_file_location({mod_name!r}, "
           f"Path(__file__).resolve().parent / {rel!r})",
           "assert _SPEC is not None and _SPEC.loader is not None",
           "code = importlib.util.module_from_spec(_SPEC)",
           "sys.modules[_SPEC.name] = code", "_SPEC.loader.exec_module(code)", "", "",
           f"A = {a!r}", f"B = {b!r}", "", "",
           "def test_a_record_keeps_every_field() -> None:",
           f'    """{p.ids_text}: what is added is what is read back."""',
           f"    book = code.{p.name}()", "    ident = book.add(A)",
           "    assert all(book.get(ident)[k] == v for k, v in A.items())", "", "",
           "def test_a_record_missing_a_field_is_refused() -> None:",
           f"    book = code.{p.name}()", "    with pytest.raises(code.Refused):",
           f"        book.add({{**A, {first!r}: ''}})"]
    if p.choices:
        out += ["", "", "def test_only_allowed_values_are_kept() -> None:",
                f'    """{p.ids_text}: {p.choice_field} is one of {", ".join(p.choices)}."""',
                f"    book = code.{p.name}()", "    with pytest.raises(code.Refused):",
                f"        book.add({{**A, {p.choice_field!r}: 'not-' + A[{p.choice_field!r}]}})"]
    if p.has("update"):
        out += ["", "", "def test_a_change_is_kept() -> None:", f"    book = code.{p.name}()",
                "    ident = book.add(A)", f"    book.update(ident, {{{first!r}: B[{first!r}]}})",
                f"    assert book.get(ident)[{first!r}] == B[{first!r}]"]
    if p.has("remove"):
        out += ["", "", "def test_a_removed_record_is_gone() -> None:", f"    book = code.{p.name}()",
                "    ident = book.add(A)", "    book.remove(ident)", "    assert ident not in book.all()"]
    if p.has("find"):
        out += ["", "", "def test_a_search_returns_only_matches() -> None:", f"    book = code.{p.name}()",
                "    one, _two = book.add(A), book.add(B)",
                f"    assert book.find({{{first!r}: A[{first!r}]}}) == [one]"]
    if p.has("sort"):
        out += ["", "", "def test_records_come_newest_first() -> None:", f"    book = code.{p.name}()",
                "    one, two = book.add(A), book.add(B)", "    assert book.newest_first() == [two, one]"]
    if p.has("count"):
        key = p.choice_field if p.choices else first
        out += ["", "", "def test_counts_add_up() -> None:", f"    book = code.{p.name}()",
                "    book.add(A)", "    book.add(A)", "    book.add(B)",
                f"    assert book.count_by()[A[{key!r}]] == 2"]
    if p.has("history"):
        out += ["", "", "def test_history_is_newest_first() -> None:", f"    book = code.{p.name}()",
                "    ident = book.add(A)"]
        if p.has("update"):
            out += [f"    book.update(ident, {{{first!r}: B[{first!r}]}})",
                    "    assert book.history(ident)[-1] == 'added'",
                    "    assert book.history(ident)[0].startswith('changed')"]
        else:
            out += ["    book.add(B)", "    assert book.history(ident) == ['added']"]
    if p.limit:
        low, high = number(p.limit.low), number(p.limit.high)
        out += ["", "", "def test_the_limit_holds_at_its_bounds() -> None:",
                f'    """{p.ids_text}: {low} to {high} {p.limit.unit}."""',
                f"    assert code.within_limit({low}) and code.within_limit({high})",
                f"    assert not code.within_limit({high} + 1)"]
    return "\n".join(out) + "\n"
