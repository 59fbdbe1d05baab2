"""The simulated DevOps and reports: release notes of what was shipped, squad and final
reports of what was delivered and what failed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from orchestrator.agents.outputs import DeployOutput, ReportOutput, ResultOut, SmokeTestOut
from orchestrator.core.provider import Facts
from orchestrator.sim.spec import REQ_ID


def deploy_output(facts: Facts) -> DeployOutput:
    """Release notes and the one smoke test the simulator can truly answer: the bundle holds
    every file, none empty. It runs nothing, so it claims nothing about running."""
    squad = facts.text("squad") or "squad"
    files = facts.files
    empty = sorted(p for p, text in files.items() if not text.strip())
    tests = [SmokeTestOut(name="release bundle complete", passed=bool(files) and not empty,
                          detail=(f"empty: {', '.join(empty)}" if empty else
                                  f"{len(files)} file(s), none empty" if files else "no files"))]
    ids = sorted({m.upper() for text in files.values() for m in REQ_ID.findall(text)},
                 key=_id_order)
    notes = [f"# Release notes: {squad}", "", f"Project {facts.text('project', 'project')}, "
             f"squad {squad}: {len(files)} file(s) in the bundle.", "",
             "## Requirements named by the files", ""]
    notes += [f"- {i}" for i in ids] or ["- none"]
    notes += ["", "## Files", ""]
    notes += [f"- `{p}` ({len(t.splitlines())} lines)" for p, t in sorted(files.items())] or [
        "- none"]
    notes += ["", "What was run on them is in QA's reports and in this deploy's smoke tests."]
    return DeployOutput(smoke_tests=tests, release_notes_markdown="\n".join(notes) + "\n")


def _id_order(req_id: str) -> tuple[int, list[int]]:
    return (req_id.startswith("NFR"), [int(n) for n in re.findall(r"\d+", req_id)])


def report_output(facts: Facts) -> ReportOutput:
    """A squad's report (facts: `squad`, `delivered` and `failed` tasks) or the final one
    (`delivered` and `failed` squads)."""
    delivered, failed = _clipped(facts.names("delivered")), _clipped(facts.names("failed"))
    squad = facts.text("squad")
    who = f"Squad {squad}" if squad else f"Project {facts.text('project', 'project')}"
    unit_name = "task" if squad else "squad"
    if not delivered and not failed:
        summary = f"{who}: no results were reported."
    else:
        summary = (f"{who}: {len(delivered)} {unit_name}(s) delivered, {len(failed)} failed"
                   + (f" ({', '.join(_label(f) for f in failed)})." if failed else "."))
    response = [summary, "", f"Delivered ({len(delivered)}):"]
    response += [f"- {d}" for d in delivered] or ["- none"]
    response += ["", f"Failed ({len(failed)}):"]
    response += [f"- {f}" for f in failed] or ["- none"]
    ids = sorted({m.upper() for d in delivered for m in REQ_ID.findall(d)}, key=_id_order)
    info = (f"Requirement ids named in the delivered items: {', '.join(ids)}." if ids
            else "The delivered items name no requirement ids; see the squads' backlogs.")
    if facts.files:
        info += f" {len(facts.files)} artifact(s) in the context."
    suggestions = (f"Rework or re-plan: {', '.join(_label(f) for f in failed)}." if failed else "")
    return ReportOutput(summary=summary, result=ResultOut(
        response="\n".join(response), additional_info=info, suggestions=suggestions))


def _label(item: str) -> str:
    return item.split()[0].rstrip(":,") if item.split() else item


def _clipped(items: Sequence[str]) -> list[str]:
    """Items on one line, without a trailing list of file paths, at most 160 characters."""
    flat = [re.sub(r":\s+(?:[\w.-]*/[\w./-]*(?:,\s*)?)+$", "", " ".join(i.split()))
            for i in items]
    return list(dict.fromkeys(i[:160] for i in flat))
