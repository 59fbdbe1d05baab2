"""The configured deploy command that DevOps runs for a squad (none: a release bundle only):
in QA's sandbox on a copy of the shipped files unless `deploy.sandbox: false`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.adapters.sandbox import NoSandbox, open_sandbox
from orchestrator.core.config import Config
from orchestrator.core.events import SmokeTest
from orchestrator.runtime.qa_run import lay_out, limits_of

NAME = "deploy command"


def deploy_runner(root: Path, config: Config, read_text: Callable[[str], str | None]
                  ) -> Callable[[str, str, list[str]], SmokeTest] | None:
    deploy = config.deploy
    if not deploy.command.strip():
        return None

    def run(project: str, squad: str, artifacts: list[str]) -> SmokeTest:
        env = {"ORCH_PROJECT": project, "ORCH_SQUAD": squad,
               "ORCH_ARTIFACTS": "\n".join(artifacts)}
        if not deploy.sandbox:
            return _on_host(root, deploy.command, deploy.timeout_s, env,
                            {config.llm.api_key_env, "OPENAI_API_KEY"})
        try:
            sandbox = open_sandbox(config.qa.sandbox)
        except NoSandbox as exc:
            return SmokeTest(name=NAME, passed=False, detail=f"refused: {exc}"[:500])
        with tempfile.TemporaryDirectory(prefix="orch-deploy-") as tmp:
            tree = Path(tmp) / "tree"
            lay_out(tree, {a: text for a in artifacts if (text := read_text(a)) is not None})
            done = sandbox.run(deploy.command, tree, ".", limits_of(config.qa, deploy.timeout_s),
                               env, config.qa.max_output_bytes)
        if done.timed_out:
            return SmokeTest(name=NAME, passed=False,
                             detail=f"stopped: still running after {deploy.timeout_s:g}s")
        tail = done.output.strip().splitlines()[-1:] or [""]
        return SmokeTest(name=NAME, passed=done.exit_code == 0,
                         detail=f"exit {done.exit_code}: {tail[0][:300]}")

    return run


def _on_host(root: Path, command: str, timeout_s: float, extra: dict[str, str],
             secrets: set[str]) -> SmokeTest:
    # The model's key is not the deploy's business: it is not passed on.
    env = {k: v for k, v in os.environ.items() if k not in secrets}
    env.update(extra)
    try:
        proc = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return SmokeTest(name=NAME, passed=False, detail=f"timed out after {timeout_s:g}s")
    except OSError as exc:
        return SmokeTest(name=NAME, passed=False, detail=str(exc)[:300])
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
    return SmokeTest(name=NAME, passed=proc.returncode == 0,
                     detail=f"exit {proc.returncode}: {tail[0][:300]}")
