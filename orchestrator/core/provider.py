"""The provider protocol every agent talks to, whatever model (or none) is behind it: pure data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel

from orchestrator.core.events import Usage

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Prompt:
    """A role's system prompt as data, handed to agents by the runtime."""

    role: str
    text: str
    version: str
    """The first 12 hex digits of the text's sha256: recorded with every call that used it."""


@dataclass(frozen=True)
class RequirementFact:
    id: str
    text: str
    area: str = "general"


@dataclass(frozen=True)
class SquadFact:
    name: str
    scope: str = ""
    depends_on: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    """What a call is about, as data: the simulated team reads these where a model reads the
    rendered brief, so neither has to parse the other's prose."""

    values: Mapping[str, str | int | tuple[str, ...]] = field(default_factory=dict)
    requirements: tuple[RequirementFact, ...] = ()
    expected_files: tuple[str, ...] = ()
    """Relative to the squad's folder."""
    files: Mapping[str, str] = field(default_factory=dict)
    """Files shown to the call (relative to the squad's folder) and their text."""
    findings: tuple[str, ...] = ()
    squads: tuple[SquadFact, ...] = ()
    """A proposal's squads, for the call that decides on it."""

    def text(self, key: str, default: str = "") -> str:
        value = self.values.get(key, default)
        return value if isinstance(value, str) else default

    def number(self, key: str, default: int) -> int:
        value = self.values.get(key, default)
        return value if isinstance(value, int) else default

    def names(self, key: str) -> tuple[str, ...]:
        value = self.values.get(key, ())
        return value if isinstance(value, tuple) else ()


@dataclass(frozen=True)
class CallMeta:
    """Who asks and about what: for budgets, transcripts, alerts and deterministic choices."""

    project: str
    actor: str
    kind: str
    subject: str = ""
    prompt_version: str = ""
    facts: Facts = field(default_factory=Facts)
    choices: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(field path, allowed values): e.g. ("requirements.id", ids of the spec). A provider
    that enforces a schema may narrow it to these (a grammar then cannot invent an id); the
    answer is still checked by the content rules either way."""
    sequences: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    """(list path, key field, values): the answer's list holds one item per value, in this
    order, with its key field set to it (a review lists each of the spec's requirements once).
    A provider that enforces a schema by grammar may spell the list out item by item, so that
    a small model can neither leave one out nor repeat one; the content rules check it anyway."""


@dataclass(frozen=True)
class Completion(Generic[T]):
    output: T
    usage: Usage
    transcript: dict[str, Any] | None = field(default=None)


class Provider(Protocol):
    name: str

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        """One call: the answer validated as `output_model`, or ProviderError."""
        ...
