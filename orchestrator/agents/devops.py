"""DevOps: one per squad; deploys the squad's passed work as a release bundle and records
the smoke tests."""

from __future__ import annotations

import hashlib
import json

from orchestrator.agents.base import AgentContext, AgentOutput, ask, facts
from orchestrator.agents.outputs import DeployOutput
from orchestrator.core import events as ev
from orchestrator.core.flow import Reaction
from orchestrator.core.messages import Brief
from orchestrator.core.paths import project_dir
from orchestrator.core.provider import Facts
from orchestrator.core.state import TaskStatus


def deploy(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    mod = s.modules[r.subject]
    artifacts = sorted({a for t in s.tasks.values()
                        if t.module == mod.name and t.status == TaskStatus.PASSED
                        for a in t.artifacts})
    contents = {a: ctx.read_text(a) for a in artifacts}
    checks = [_artifact_check(path, text) for path, text in contents.items()]
    brief = Brief(
        task=f"Deploy squad {mod.name}: write the release notes and the smoke tests to run.",
        context="\n\n".join([
            facts(project=s.id, squad=mod.name),
            "## Artifacts\n" + "\n\n".join(
                f"### {a}\n{(t or '')[:4000]}" for a, t in contents.items()),
        ]),
        expected_return="Smoke tests with their outcome, and release notes.",
    )
    shipped = Facts(values={"project": s.id, "squad": mod.name},
                    files={a: t for a, t in contents.items() if t is not None})
    out = AgentOutput()
    plan = ask(ctx, r, "devops", brief, DeployOutput, out, shipped)
    base = f"{project_dir(s.id)}/{mod.name}/release"
    manifest = {
        "project": s.id, "squad": mod.name, "round": s.round,
        "artifacts": [{"path": a, "sha256": hashlib.sha256((t or "").encode()).hexdigest()}
                      for a, t in contents.items()],
    }
    bundle = out.write(f"{base}/manifest.json", json.dumps(manifest, indent=2) + "\n")
    notes = out.write(f"{base}/RELEASE_NOTES.md", plan.release_notes_markdown)
    smoke = checks + [ev.SmokeTest(name=t.name[:200], passed=t.passed, detail=t.detail[:500])
                      for t in plan.smoke_tests[:20]]
    if ctx.run_deploy is not None:
        smoke.insert(0, ctx.run_deploy(s.id, mod.name, artifacts))
    out.emit(r, ev.DevopsDeployed(module=mod.name, bundle=bundle.ref, smoke_tests=smoke),
             links=[bundle, notes])
    failed = [t.name for t in smoke if not t.passed]
    if failed:
        out.emit(r, ev.MonitorAlert(kind="deploy_failed", module=mod.name, severity="error",
                                    message=f"smoke tests failed: {', '.join(failed)}"),
                 actor=f"monitor.{mod.name}")
    return out


def _artifact_check(path: str, text: str | None) -> ev.SmokeTest:
    """A real check of what was shipped: present, non-empty, and parses where it can."""
    name = f"artifact {path}"
    if not text:
        return ev.SmokeTest(name=name, passed=False, detail="missing or empty")
    try:
        if path.endswith(".py"):
            compile(text, path, "exec")
        elif path.endswith(".json"):
            json.loads(text)
    except (SyntaxError, ValueError) as exc:
        return ev.SmokeTest(name=name, passed=False, detail=str(exc).splitlines()[0][:300])
    return ev.SmokeTest(name=name, passed=True, detail=f"{len(text)} bytes")
