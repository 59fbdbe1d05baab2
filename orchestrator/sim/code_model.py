"""The simulated Dev's plan for one task's code, shared by every language it writes: which
operations the module has, which tests check them, and which defect (if any) slips in."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.sim.behaviour import Behaviour, Limit

DEFECTS = {
    "add": "a new record loses its first field",
    "validate": "a value outside the allowed ones is accepted",
    "update": "a change is reported but not kept",
    "remove": "a removed record is still listed",
    "find": "a search returns records that do not match",
    "sort": "records come oldest first instead of newest first",
    "count": "the counts are one too high",
    "history": "the history comes oldest first",
    "limit": "the upper bound itself is refused",
}


@dataclass(frozen=True)
class CodePlan:
    name: str
    """The class name, CamelCase."""
    title: str
    ids: tuple[str, ...]
    behaviour: Behaviour
    defect: str = ""
    """One of DEFECTS' keys when this attempt carries a bug its tests catch; else empty."""

    @property
    def fields(self) -> tuple[str, ...]:
        return self.behaviour.fields or ("name",)

    @property
    def choices(self) -> tuple[str, ...]:
        return self.behaviour.choices

    @property
    def choice_field(self) -> str:
        return self.behaviour.choice_field or "kind"

    @property
    def limit(self) -> Limit | None:
        return self.behaviour.limit

    def has(self, op: str) -> bool:
        return op == "limit" and self.limit is not None or op in self.behaviour.operations

    def sample(self, n: int) -> dict[str, str]:
        values = {f: f"{f.replace('_', ' ')} {n}" for f in self.fields}
        if self.choices:
            values[self.choice_field] = self.choices[n % len(self.choices)]
        return values

    @property
    def ids_text(self) -> str:
        return ", ".join(self.ids) or "the task"


def defect_options(behaviour: Behaviour) -> list[str]:
    """The defects this code's tests would catch (a history needs two entries to be out of
    order; a value can only be wrongly allowed where some are not)."""
    ops = behaviour.operations
    usable = [op for op in DEFECTS if op in ops and (op != "validate" or behaviour.choices)
              and (op != "history" or "update" in ops)]
    return usable + (["limit"] if behaviour.limit is not None else [])


def class_name(thing: str) -> str:
    name = "".join(part.capitalize() for part in thing.split("_") if part) or "Item"
    return ("N" + name if name[0].isdigit() else name) + "Book"


def number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
