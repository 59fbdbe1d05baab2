"""Calls to the simulated team with typed facts, as the agents make them, on specs that are
none of the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator.agents import outputs as out
from orchestrator.core.config import OfflineConfig
from orchestrator.core.provider import CallMeta, Facts, Message, RequirementFact
from orchestrator.sim.provider import OfflineProvider

T = TypeVar("T", bound=BaseModel)

# Two products with nothing in common with each other or with the examples.
GREENHOUSE = (
    RequirementFact("FR-1", "Growers register a seed tray (crop, bench, sown on) and edit "
                            "its notes; a tray is one of seedling, hardening or planted out.",
                    "backend"),
    RequirementFact("FR-2", "The service counts trays per stage and lists the newest first.",
                    "backend"),
)
LIBRARY = (
    RequirementFact("FR-1", "Members search the catalogue of books by author and remove "
                            "lost copies; a loan lasts at most 21 days.", "backend"),
)


def dev_facts(reqs: tuple[RequirementFact, ...], files: tuple[str, ...], *, attempt: int = 1,
              reason: str = "new", squad: str = "core", task: str = "core-1",
              depends_on: tuple[str, ...] = (), findings: tuple[str, ...] = ()) -> Facts:
    return Facts(values={"project": "p", "squad": squad, "squads": ("core", "site"),
                         "depends_on": depends_on, "task": task, "title": "Work",
                         "attempt": attempt, "reason": reason},
                 requirements=reqs, expected_files=files, findings=findings)


def call(model: type[T], facts: Facts, **knobs: Any) -> T:
    provider = OfflineProvider(OfflineConfig(**knobs))
    meta = CallMeta("p", "agent", "k", facts=facts)
    return provider.complete("agent", [Message("user", "(brief)")], model, meta).output


def write(root: Path, files: list[out.FileOutput]) -> None:
    for f in files:
        (root / f.path).parent.mkdir(parents=True, exist_ok=True)
        (root / f.path).write_text(f.content)
