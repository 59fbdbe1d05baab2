"""The configuration model of `.orchestrator/config.yaml` (pure: parsing lives in adapters)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    # strict: `parallelism: true` or `lease_s: "600"` is a mistake to name, not to coerce.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class OfflineConfig(_Strict):
    """Knobs of the offline provider: every branch of the flow can be driven on purpose."""

    seed: int = 7
    qa_fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that a task's first attempt carries a defect its own tests catch."""
    rework_fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Chance that such a defect survives every rework (the task ends rework-exhausted)."""
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
    sandbox: bool = True
    """Run the command in QA's sandbox (a copy of the shipped files, no network); false runs
    it on the host, from the repository's root, with the network."""


class LanguageCheck(_Strict):
    """A check QA runs where a squad's files match `detect` (globs on squad-relative paths)."""

    detect: list[str] = Field(min_length=1)
    command: str = Field(min_length=1)
    """Run from the project's folder; `{files}` is the matched files, `{dir}` the folder of
    each match (one run per folder)."""


class SquadCheck(_Strict):
    """One of a squad's own checks: a shell command run from the squad's folder."""

    name: str = Field(min_length=1, max_length=100)
    command: str = Field(min_length=1)


DEFAULT_LANGUAGES: dict[str, LanguageCheck] = {
    "python": LanguageCheck(detect=["**/test_*.py", "**/*_test.py"],
                            command="pytest -q -p no:cacheprovider {files}"),
    "javascript": LanguageCheck(detect=["**/*.test.js", "**/*.test.mjs", "**/*.test.cjs"],
                                command="node --test {files}"),
    "typescript": LanguageCheck(detect=["**/tsconfig.json"], command="tsc --noEmit -p {dir}"),
    "terraform": LanguageCheck(detect=["**/*.tf"], command=(
        "terraform -chdir={dir} init -backend=false -input=false -no-color"
        " && terraform -chdir={dir} validate -no-color")),
}


class QaConfig(_Strict):
    sandbox: Literal["bwrap", "none"] = "bwrap"
    """Where generated code runs: `none` runs it on the host, unconfined (say so knowingly)."""
    languages: dict[str, LanguageCheck | None] = {}
    """Added to or replacing the defaults by name; null turns a default off."""
    checks: dict[str, list[SquadCheck]] = {}
    """A squad's own checks by squad name; `"*"` applies to every squad."""
    timeout_s: float = Field(default=120, gt=0, le=3600)
    memory_mb: int = Field(default=2048, ge=64)
    max_processes: int = Field(default=256, ge=8)
    max_output_bytes: int = Field(default=2000, ge=200, le=20_000)
    """How much of a failing check's output a finding carries."""

    def language_checks(self) -> dict[str, LanguageCheck]:
        merged: dict[str, LanguageCheck | None] = {**DEFAULT_LANGUAGES, **self.languages}
        return {name: check for name, check in merged.items() if check is not None}

    def squad_checks(self, squad: str) -> list[SquadCheck]:
        return [*self.checks.get("*", []), *self.checks.get(squad, [])]


class SpecsConfig(_Strict):
    ignore: list[str] = ["specs/archive/"]
    """Folders under specs/ whose files never start a project."""


class GitSettings(_Strict):
    verify: bool = True
    """Run the repository's pre-commit and commit-msg hooks on orch's commits; false skips
    them, as `git commit --no-verify` does."""


class ReviewConfig(_Strict):
    """Who decides that a task's branch is merged: QA's pass (auto) or a person (human)."""

    mode: Literal["auto", "human"] = "auto"
    """auto: a QA pass merges the task's branch; human: the task waits in review until a
    person approves (`orch approve`, or the pull request) or rejects it."""
    host: Literal["local", "github"] = "local"
    """local: `orch review`/`approve`/`reject`; github: one pull request per task branch."""
    max_open_prs: int = Field(default=10, ge=1, le=1000)
    """Open orch pull requests per project (host github)."""

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        # `review: human` is the short form of `review: {mode: human}`.
        return {"mode": data} if isinstance(data, str) else data


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
    qa: QaConfig = QaConfig()
    specs: SpecsConfig = SpecsConfig()
    git: GitSettings = GitSettings()
    review: ReviewConfig = ReviewConfig()
    llm: LlmConfig = LlmConfig()
