"""The content rules of the core: plain lists in, what is missing out."""

from __future__ import annotations

from orchestrator.core.checks import (
    missing_from_review,
    ownership_problems,
    spec_requirement_ids,
    uncovered_by_backlog,
)

SPEC = """# Tracker

Some prose that mentions FR-9 in passing does not define it.

## Requirements
- FR-1: create tasks
- **FR-2** (web): list tasks
1. NFR-1: fast enough
### FR-3: Export
| FR-4 | import |
- fr-1 again is the same one
"""


def test_spec_requirement_ids_are_the_defined_ones_in_order() -> None:
    assert spec_requirement_ids(SPEC) == ["FR-1", "FR-2", "NFR-1", "FR-3", "FR-4"]
    assert spec_requirement_ids("no ids at all") == []


def test_review_must_keep_every_requirement_of_the_spec() -> None:
    assert missing_from_review(["FR-1", "FR-2", "NFR-1"], ["fr-1 ", "NFR-1"]) == ["FR-2"]
    assert missing_from_review(["FR-1"], ["FR-1", "FR-7"]) == []
    assert missing_from_review(["R1", "R2"], []) == ["R1", "R2"]


def test_every_requirement_has_exactly_one_squad() -> None:
    squads = {"backend": ["FR-1", "FR-2"], "web": ["fr-2", "FR-9"]}
    assert ownership_problems(["FR-1", "FR-2", "FR-3"], squads) == [
        "FR-2 is given to 2 squads (backend, web); give it to one",
        "FR-3 has no squad",
    ]
    assert ownership_problems(["FR-1"], {"backend": ["FR-1", "FR-1"]}) == []
    assert ownership_problems(["FR-1"], {}) == ["FR-1 has no squad"]


def test_backlog_covers_its_squads_requirements() -> None:
    assert uncovered_by_backlog(["FR-1", "FR-2", "NFR-1"], [["FR-1"], [], ["nfr-1"]]) == ["FR-2"]
    assert uncovered_by_backlog(["FR-1"], [["FR-1", "FR-5"]]) == []
