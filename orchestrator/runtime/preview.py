"""`orch run --dry-run`: which committed specs would start projects, and what starting each
costs (the CTO's spec review call, estimated before anything is asked of a model)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.agents.outputs import SpecReviewOutput
from orchestrator.core.config import Config
from orchestrator.core.provider import Message
from orchestrator.runtime.budget import estimate_tokens
from orchestrator.runtime.projects import unclaimed_specs
from orchestrator.runtime.prompts import load_prompt
from orchestrator.runtime.workspace import Workspace


@dataclass(frozen=True)
class SpecPreview:
    path: str
    starts: bool
    note: str
    """Why it would not start, or what starting it costs."""


def preview_specs(ws: Workspace, config: Config) -> list[SpecPreview]:
    """Every unclaimed file under specs/: whether `orch run` would start it, and the cost."""
    _, candidates = unclaimed_specs(ws, config)
    previews = []
    for c in candidates:
        if c.skipped or c.refused:
            previews.append(SpecPreview(c.path, False, str(c.skipped or c.refused)))
        else:
            previews.append(SpecPreview(c.path, True, start_cost(config, c.text)))
    return previews


def start_cost(config: Config, spec_text: str) -> str:
    """The spec review's worst case: its prompt estimated, plus the most it may answer."""
    messages = [Message("system", load_prompt("cto").text), Message("user", spec_text)]
    schema_chars = len(str(SpecReviewOutput.model_json_schema()))
    prompt = estimate_tokens(messages, schema_chars)
    llm = config.llm
    if llm.provider != "openai":
        return f"~{prompt} prompt tokens, no cost ({llm.provider} provider)"
    model = llm.model_for("cto")
    price = llm.prices.get(model)
    tokens = f"~{prompt} prompt + up to {llm.max_output_tokens} completion tokens on {model}"
    if price is None:
        return f"{tokens} (no price configured for {model}: llm.prices)"
    cost = (prompt * price.prompt + llm.max_output_tokens * price.completion) / 1_000_000
    return f"{tokens}, at most ${cost:.4f}"
