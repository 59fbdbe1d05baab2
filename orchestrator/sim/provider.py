"""The offline provider (the default): deterministic answers derived from the brief, no network.

Each call is answered from what its messages say — the spec, the requirements, the artifacts —
so the whole flow runs on any spec. Chance (QA failures, blockers, dependency requests) comes
only from seeded hashes of the seed and the call's subject, never from global random state.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from orchestrator.agents.outputs import (
    BacklogOutput,
    DependencyAnswer,
    DeployOutput,
    DevOutput,
    FixTaskOutput,
    ProposalDecision,
    ProposalOutput,
    QaOutput,
    ReportOutput,
    SpecReviewOutput,
)
from orchestrator.core.config import OfflineConfig
from orchestrator.core.events import Usage
from orchestrator.core.provider import CallMeta, Completion, Facts, Message
from orchestrator.errors import ProviderError
from orchestrator.sim import backlog, dev, plan, work
from orchestrator.sim.brief import facts_of, parse_call, user_text

T = TypeVar("T", bound=BaseModel)
Builder = Callable[[Facts], BaseModel]


class OfflineProvider:
    """Answers every kind of call the agents make, the same way for the same input and seed."""

    name = "offline"

    def __init__(self, config: OfflineConfig) -> None:
        self.config = config
        c = config
        self._builders: dict[type[BaseModel], Builder] = {
            SpecReviewOutput: plan.spec_review,
            ProposalOutput: plan.proposal,
            ProposalDecision: plan.decision,
            BacklogOutput: lambda facts: backlog.backlog(
                facts, c.tasks_per_requirement, c.seed, c.dependency_request_rate),
            DevOutput: lambda facts: dev.dev_output(facts, c),
            QaOutput: dev.qa_output,
            DeployOutput: work.deploy_output,
            ReportOutput: work.report_output,
            FixTaskOutput: backlog.fix_task,
            DependencyAnswer: backlog.dependency_answer,
        }

    def complete(
        self, role: str, messages: Sequence[Message], output_model: type[T], meta: CallMeta
    ) -> Completion[T]:
        """One call: an instance of `output_model` built from the messages, or ProviderError."""
        builder = self._builders.get(output_model)
        if builder is None:
            known = ", ".join(m.__name__ for m in self._builders)
            raise ProviderError(
                f"the offline provider cannot answer "
                f"{getattr(output_model, '__name__', output_model)} for {role}; it knows {known}")
        contents = [(str(m.role), str(m.content)) for m in messages]
        try:
            # The agents hand their facts over; text alone (a brief that came over HTTP) is
            # read back into facts first.
            call_facts = meta.facts if meta.facts.values else facts_of(parse_call(user_text(contents)))
            if not call_facts.text("project") and meta.project:
                call_facts = dataclasses.replace(
                    call_facts, values={**call_facts.values, "project": meta.project})
            output = builder(call_facts)
        except Exception as exc:  # the contract: a failed call is a ProviderError, nothing else
            raise ProviderError(
                f"the offline provider could not answer {output_model.__name__} for {role} "
                f"({meta.kind or 'call'} {meta.subject}): {exc}") from exc
        if not isinstance(output, output_model):
            raise ProviderError(f"the offline provider built a {type(output).__name__}, "
                                f"not a {output_model.__name__}")
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        prompt_chars = sum(len(text) for _, text in contents)
        usage = Usage(model="offline", prompt_tokens=prompt_chars // 4,
                      completion_tokens=len(output.model_dump_json()) // 4, cost_usd=0.0,
                      latency_ms=self.config.latency_ms, calls=1)
        return Completion(output=output, usage=usage)
