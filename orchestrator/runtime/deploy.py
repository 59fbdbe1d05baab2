"""The configured deploy command that DevOps runs for a squad (none: a release bundle only)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from orchestrator.core.config import DeployConfig
from orchestrator.core.events import SmokeTest


def deploy_runner(root: Path, config: DeployConfig, secret_env: str = "OPENAI_API_KEY"
                  ) -> Callable[[str, str, list[str]], SmokeTest] | None:
    if not config.command.strip():
        return None

    def run(project: str, squad: str, artifacts: list[str]) -> SmokeTest:
        # The model's key is not the deploy's business: it is not passed on.
        env = {k: v for k, v in os.environ.items() if k not in {secret_env, "OPENAI_API_KEY"}}
        env.update(ORCH_PROJECT=project, ORCH_SQUAD=squad, ORCH_ARTIFACTS="\n".join(artifacts))
        try:
            proc = subprocess.run(config.command, shell=True, cwd=root, env=env,
                                  capture_output=True, text=True, timeout=config.timeout_s,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return SmokeTest(name="deploy command", passed=False,
                             detail=f"timed out after {config.timeout_s:g}s")
        except OSError as exc:
            return SmokeTest(name="deploy command", passed=False, detail=str(exc)[:300])
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
        return SmokeTest(name="deploy command", passed=proc.returncode == 0,
                         detail=f"exit {proc.returncode}: {tail[0][:300]}")

    return run
