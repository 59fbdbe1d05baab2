"""The configuration model of `.orchestrator/config.yaml` (pure: parsing lives in adapters)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    # strict: `parallelism: true` or `lease_s: "600"` is a mistake to name, not to coerce.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class OfflineConfig(_Strict):
    """Knobs of the offline provider: every branch of the flow can be driven on purpose."""

    seed: int = 7
    qa_fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    blocker_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    dependency_request_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    tasks_per_requirement: int = Field(default=1, ge=1, le=10)


class BudgetConfig(_Strict):
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)


class Price(_Strict):
    """USD per million tokens."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


class LlmConfig(_Strict):
    provider: Literal["offline", "openai", "replay"] = "offline"
    offline: OfflineConfig = OfflineConfig()
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    models: dict[str, str] = {}
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=3, ge=0, le=20)
    max_reasks: int = Field(default=2, ge=0, le=10)
    max_output_tokens: int = Field(default=4096, ge=16)
    structured_output: Literal["auto", "json_schema", "json_object_schema", "json_object",
                               "prompt"] = "auto"
    """auto: probe once per server and model, best mode first (see docs/providers.md)."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    budget: BudgetConfig = BudgetConfig()
    prices: dict[str, Price] = {}

    def model_for(self, role: str) -> str:
        return self.models.get(role, self.model)


class DeployConfig(_Strict):
    command: str = ""
    """A shell command DevOps runs from the repository's root, with ORCH_PROJECT, ORCH_SQUAD
    and ORCH_ARTIFACTS (one path a line) set; empty: the release bundle only."""
    timeout_s: float = Field(default=300, gt=0)


class SpecsConfig(_Strict):
    ignore: list[str] = ["specs/archive/"]
    """Folders under specs/ whose files never start a project."""


class GitSettings(_Strict):
    verify: bool = True
    """Run the repository's pre-commit and commit-msg hooks on orch's commits; false skips
    them, as `git commit --no-verify` does."""


class Config(_Strict):
    max_review_rounds: int = Field(default=3, ge=1, le=10)
    max_qa_rework: int = Field(default=2, ge=0, le=20)
    max_decomposition_depth: int = Field(default=1, ge=0, le=5)
    parallelism: int = Field(default=4, ge=1, le=64)
    lease_s: int = Field(default=600, ge=1)
    loop_guard: int = Field(default=5000, ge=10)
    max_failures: int = Field(default=3, ge=1, le=100)
    """A reaction that failed closed this often waits for a person: `orch retry`."""
    deploy: DeployConfig = DeployConfig()
    specs: SpecsConfig = SpecsConfig()
    git: GitSettings = GitSettings()
    llm: LlmConfig = LlmConfig()
