"""Prompts as data: `agents/prompts/<role>.md`, read once per process, versioned by content."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from orchestrator.core.provider import Prompt


@cache
def load_prompt(role: str) -> Prompt:
    text = resources.files("orchestrator.agents").joinpath(f"prompts/{role}.md").read_text(
        encoding="utf-8")
    return Prompt(role=role, text=text, version=hashlib.sha256(text.encode()).hexdigest()[:12])
