"""The per-project budget guard: a call that could pass the budget is refused before it is made.

`Budget.reserve()` is called before a model call with an estimate of the prompt tokens and the
call's `max_output_tokens`; it raises `BudgetExceeded` when the tokens (or the cost) already used,
plus the calls in flight, plus this call's worst case would pass the limit. `record()` adds what
the call really used and releases its reservation. Since every call reserves its worst case,
parallel calls cannot overshoot together: the total stays within the limit, except for a prompt
longer than its estimate (at most one call's difference).

`BudgetedProvider` wraps any provider with a budget per project.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from orchestrator.core.config import BudgetConfig, LlmConfig, Price
from orchestrator.core.events import Usage
from orchestrator.core.provider import CallMeta, Completion, Message, Provider
from orchestrator.errors import ProviderError

T = TypeVar("T", bound=BaseModel)

CHARS_PER_TOKEN = 4
"""A rough tokenizer-free estimate: English text and code average about 4 characters a token."""


class BudgetExceeded(ProviderError):
    """Raised before a model call that could take the project past its budget."""


@dataclass(frozen=True)
class Reservation:
    """What one call reserved; handed back to `record()` or `release()`."""

    tokens: int
    cost_usd: float


def estimate_tokens(messages: Sequence[Message], extra_chars: int = 0) -> int:
    """A conservative token estimate of a prompt (chars / 4, plus a few per message)."""
    chars = sum(len(m.content) for m in messages) + extra_chars
    return chars // CHARS_PER_TOKEN + 4 * len(messages) + 1


class Budget:
    """One project's budget: limits from `BudgetConfig`, usage so far, calls in flight."""

    def __init__(
        self,
        config: BudgetConfig,
        used_tokens: int = 0,
        used_cost_usd: float = 0.0,
        *,
        project: str = "",
        price: Price | None = None,
    ) -> None:
        self.config = config
        self.project = project
        self.price = price
        self._used_tokens = used_tokens
        self._used_cost = used_cost_usd
        self._pending: deque[Reservation] = deque()
        self._lock = threading.Lock()

    @classmethod
    def from_usage(
        cls,
        config: BudgetConfig,
        usages: Iterable[Usage],
        *,
        project: str = "",
        price: Price | None = None,
    ) -> Budget:
        """A budget that already counts the usage recorded in the project's log."""
        tokens = 0
        cost = 0.0
        for u in usages:
            tokens += u.prompt_tokens + u.completion_tokens
            cost += u.cost_usd
        return cls(config, tokens, cost, project=project, price=price)

    @property
    def used_tokens(self) -> int:
        with self._lock:
            return self._used_tokens

    @property
    def used_cost_usd(self) -> float:
        with self._lock:
            return self._used_cost

    @property
    def pending_tokens(self) -> int:
        with self._lock:
            return sum(r.tokens for r in self._pending)

    def reserve(
        self, estimate_tokens: int, max_output_tokens: int, price: Price | None = None
    ) -> Reservation:
        """Reserve one call's worst case, or raise BudgetExceeded (and reserve nothing).

        The cost is estimated with `price` (else the budget's price); without a price, only the
        cost already used is checked against `max_cost_usd`.
        """
        tokens = max(0, estimate_tokens) + max(0, max_output_tokens)
        price = price or self.price
        cost = 0.0
        if price is not None:
            cost = (max(0, estimate_tokens) * price.prompt
                    + max(0, max_output_tokens) * price.completion) / 1_000_000
        who = f"project {self.project}" if self.project else "the project"
        with self._lock:
            pending_tokens = sum(r.tokens for r in self._pending)
            pending_cost = sum(r.cost_usd for r in self._pending)
            limit = self.config.max_tokens
            if limit is not None and self._used_tokens + pending_tokens + tokens > limit:
                raise BudgetExceeded(
                    f"budget: {who} would pass llm.budget.max_tokens {limit} (used "
                    f"{self._used_tokens}, in flight {pending_tokens}, this call up to {tokens}); "
                    "raise the budget to go on")
            max_cost = self.config.max_cost_usd
            if max_cost is not None and (
                    self._used_cost + pending_cost + cost > max_cost
                    or self._used_cost >= max_cost):
                raise BudgetExceeded(
                    f"budget: {who} would pass llm.budget.max_cost_usd {max_cost:g} (used "
                    f"${self._used_cost:.4f}, in flight ${pending_cost:.4f}, this call up to "
                    f"${cost:.4f}); raise the budget to go on")
            reservation = Reservation(tokens, cost)
            self._pending.append(reservation)
            return reservation

    def _release_locked(self, reservation: Reservation | None) -> None:
        if reservation is None:
            if self._pending:
                self._pending.popleft()
            return
        with contextlib.suppress(ValueError):
            self._pending.remove(reservation)

    def release(self, reservation: Reservation | None = None) -> None:
        """Drop a reservation whose call was not made or used nothing."""
        with self._lock:
            self._release_locked(reservation)

    def record(self, usage: Usage, reservation: Reservation | None = None) -> None:
        """Add a call's actual usage, and release its reservation (the oldest one if None)."""
        with self._lock:
            self._used_tokens += usage.prompt_tokens + usage.completion_tokens
            self._used_cost += usage.cost_usd
            self._release_locked(reservation)


class BudgetedProvider:
    """A provider whose calls go through the project's budget (reserve, call, record)."""

    def __init__(
        self,
        inner: Provider,
        budget_for: Callable[[str], Budget | None],
        config: LlmConfig,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._budget_for = budget_for
        self._config = config

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        budget = self._budget_for(meta.project)
        if budget is None:
            return self.inner.complete(role, messages, output_model, meta)
        model = self._config.model_for(role)
        schema_chars = len(str(output_model.model_json_schema()))
        reservation = budget.reserve(
            estimate_tokens(messages, schema_chars), self._config.max_output_tokens,
            self._config.prices.get(model))
        try:
            completion = self.inner.complete(role, messages, output_model, meta)
        except ProviderError as exc:
            used = getattr(exc, "usage", None)
            if isinstance(used, Usage):
                budget.record(used, reservation)
            else:
                budget.release(reservation)
            raise
        except BaseException:
            budget.release(reservation)
            raise
        budget.record(completion.usage, reservation)
        return completion
