"""Runs QA's checks on a throwaway copy of a project's files, inside the sandbox, and says of
each whether it passed, failed or could not run (and why)."""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from orchestrator.adapters.sandbox import Limits, NoSandbox, Sandbox, open_sandbox
from orchestrator.core.config import QaConfig
from orchestrator.core.events import CheckOutcome
from orchestrator.core.verdict import PlannedCheck

MISSING_TOOL = "orch: tool not installed:"
# What differs between two runs of the same code: timings, addresses, the copy's folder.
_NOISE = ((re.compile(r"\d+\.\d+\s?m?s\b"), "<time>"),
          (re.compile(r"duration_ms:? [\d.]+"), "duration_ms <time>"),
          (re.compile(r"\b0x[0-9a-f]{6,}\b"), "0x…"))


def steady(output: str, tree: Path) -> str:
    """A run's output with what varies between identical runs masked, so the same code gets
    the same findings (and the same events) every time."""
    output = output.replace(str(tree), ".")
    for pattern, mask in _NOISE:
        output = pattern.sub(mask, output)
    return output


def limits_of(qa: QaConfig, timeout_s: float | None = None) -> Limits:
    return Limits(timeout_s=timeout_s or qa.timeout_s, memory_mb=qa.memory_mb,
                  max_processes=qa.max_processes)


def lay_out(tree: Path, files: Mapping[str, str]) -> None:
    """Write `files` (relative paths) under `tree`; a path that would leave it is skipped."""
    tree.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            continue
        target = tree.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


class CheckRunner:
    """QA's hands: `run(project, files, checks)` with files relative to the project's folder."""

    def __init__(self, qa: QaConfig) -> None:
        self.qa = qa

    def run(self, project: str, files: Mapping[str, str],
            checks: Sequence[PlannedCheck]) -> list[CheckOutcome]:
        if not checks:
            return []
        try:
            sandbox = open_sandbox(self.qa.sandbox)
        except NoSandbox as exc:
            return [CheckOutcome(name=c.name, status="not_run", command=c.command,
                                 detail=str(exc)) for c in checks]
        return [self._one(sandbox, project, files, c) for c in checks]

    def _one(self, sandbox: Sandbox, project: str, files: Mapping[str, str],
             check: PlannedCheck) -> CheckOutcome:
        guarded = (f"command -v {shlex.quote(check.tool)} >/dev/null 2>&1 || "
                   f"{{ echo {shlex.quote(MISSING_TOOL + ' ' + check.tool)}; exit 127; }}\n"
                   f"{check.command}")
        # A fresh copy per check: what one check writes (caches, .terraform) never feeds another.
        with tempfile.TemporaryDirectory(prefix="orch-qa-") as tmp:
            tree = Path(tmp) / "tree"
            lay_out(tree, files)
            run = sandbox.run(guarded, tree, ".", limits_of(self.qa),
                              {"ORCH_PROJECT": project}, self.qa.max_output_bytes)
        out = steady(run.output, tree).strip()
        if run.timed_out:
            return CheckOutcome(name=check.name, status="failed", command=check.command,
                                detail=f"stopped: still running after {self.qa.timeout_s:g}s"
                                       + (f"\n{out}" if out else ""))
        if run.exit_code == 127 and out.startswith(MISSING_TOOL):
            return CheckOutcome(name=check.name, status="not_run", command=check.command,
                                detail=f"not run: {check.tool} not installed")
        if run.exit_code == 1 and out.startswith("bwrap: "):
            return CheckOutcome(name=check.name, status="not_run", command=check.command,
                                detail=f"not run: the sandbox did not start ({out[:300]})")
        if run.exit_code == 0:
            last = (out.splitlines() or [""])[-1]
            return CheckOutcome(name=check.name, status="passed", command=check.command,
                                detail=last[:300])
        return CheckOutcome(name=check.name, status="failed", command=check.command,
                            detail=f"exit {run.exit_code}\n{out}")
