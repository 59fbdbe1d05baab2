"""Offline provider: the answers about work done — Dev artifacts, QA, DevOps and reports."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence

from orchestrator.agents.outputs import (
    Blocker,
    DeployOutput,
    DevOutput,
    FileOutput,
    QaOutput,
    ReportOutput,
    ResultOut,
    SmokeTestOut,
)
from orchestrator.sim.artifacts import render_file
from orchestrator.sim.brief import Artifact, CallContext
from orchestrator.sim.spec import REQ_ID, clauses, decapitalize, slug, unit
from orchestrator.sim.task import describe_work

_FAILED = re.compile(r"\b(failed|failure|rework[_ -]exhausted|exhausted|blocked|cancell?ed)\b",
                     re.IGNORECASE)
_DELIVERED = re.compile(r"\b(passed|delivered|done|completed?|deployed|merged|accepted)\b",
                        re.IGNORECASE)


def _safe(path: str) -> bool:
    return bool(path) and not path.startswith(("/", "\\")) and ".." not in path.split("/")


def dev_output(ctx: CallContext, seed: int, blocker_rate: float) -> DevOutput:
    task = ctx.fact("task", "task")
    squad = ctx.squad or task.rsplit("-", 1)[0]
    work = describe_work(ctx)
    others = [s for s in ctx.fact_list("squads") if s != squad]
    # A squad can only be blocked by a squad whose work it builds on.
    upstream = [d for d in ctx.fact_list("depends_on") if d in others]
    first_try = ctx.fact("reason", "new") == "new" and ctx.fact_int("attempt", 1) == 1
    if first_try and upstream and unit(seed, ctx.project, task, "block") < blocker_rate:
        target = upstream[0]
        what = "the API contract" if target.startswith("backend") else "the interfaces"
        description = (f"{task} ({work.ids_text}: {work.title}) cannot be built without "
                       f"{what} of {target}: the names, data shapes and error cases it must use.")
        return DevOutput(files=[], blocked=True, blocker=Blocker(squad=target,
                                                                 description=description),
                         result=ResultOut(response=f"Blocked by {target}: {description}",
                                          additional_info="No files were written.",
                                          suggestions=f"Ask {target} (through the CTO) for "
                                                      f"{what}, then reactivate {task}."))
    paths = [p for p in ctx.expected_files if _safe(p)] or [
        f"docs/{slug(work.title, sep='-').replace('_', '-')}.md"]
    files: list[FileOutput] = []
    lines: list[str] = []
    for path in paths:
        content, summary = render_file(path, work)
        files.append(FileOutput(path=path, content=content))
        lines.append(f"{path}: {summary}")
    per_req = [f"- {rid}: " + "; ".join(lines) for rid in work.ids] or [
        "- " + "; ".join(lines)]
    response = f"Built {task} ({work.title}):\n" + "\n".join(per_req)
    info = f"{len(files)} file(s) written; each names {work.ids_text}."
    skipped = [p for p in ctx.expected_files if not _safe(p)]
    if skipped:
        info += f" Refused unsafe path(s): {', '.join(skipped)}."
    if work.findings:
        response += "\nQA findings addressed:\n" + "\n".join(
            f"- {f} -> covered by a test or section named after the finding"
            for f in work.findings)
    return DevOutput(files=files, blocked=False, blocker=None,
                     result=ResultOut(response=response, additional_info=info, suggestions=""))


def _mentions(req_id: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(req_id)}(?!\d|\.\d)", text, re.IGNORECASE) is not None


def check_artifacts(artifacts: Sequence[Artifact], ids: Sequence[str],
                    expected: Sequence[str]) -> list[str]:
    """Real problems: missing or empty files, code that does not parse, requirements unnamed."""
    problems: list[str] = []
    paths = {a.path for a in artifacts}
    shown = [a for a in artifacts if a.content is not None]
    if not artifacts:
        problems.append("No artifacts were delivered for this task.")
    problems += [f"Expected file {p} is missing." for p in expected if p not in paths]
    for art in shown:
        content = art.content or ""
        if not content.strip():
            problems.append(f"{art.path} is empty.")
        elif art.path.endswith(".py") and not _truncated(content):
            try:
                compile(content, art.path, "exec")
            except (SyntaxError, ValueError) as exc:
                problems.append(f"{art.path} does not parse: {exc}.")
        elif art.path.endswith(".json") and not _truncated(content):
            try:
                json.loads(content)
            except ValueError as exc:
                problems.append(f"{art.path} is not valid JSON: {exc}.")
    if shown:
        text = "\n".join(a.content or "" for a in shown)
        problems += [f"{rid}: no artifact names or implements {rid}." for rid in ids
                     if not _mentions(rid, text)]
    return problems


def _truncated(content: str) -> bool:
    tail = content.rstrip().rsplit("\n", 1)[-1].lower()
    return "truncated" in tail or tail.endswith(("...", "\u2026"))


def qa_output(ctx: CallContext, seed: int, qa_fail_rate: float) -> QaOutput:
    task = ctx.fact("task", "task")
    attempt = ctx.fact_int("attempt", 1)
    reqs = ctx.requirements()
    artifacts = ctx.artifacts()
    expected = ctx.fact_list("expected_files") or list(ctx.expected_files)
    findings = check_artifacts(artifacts, [r.id for r in reqs], expected)
    seeded = not findings and unit(seed, ctx.project, task, attempt, "qa") < qa_fail_rate
    if seeded:
        findings = _seeded_findings(ctx, seed, task, attempt)
    checks = ("Checked: expected files present, files non-empty, Python and JSON parse, every "
              "requirement id named by an artifact.")
    ids = ", ".join(r.id for r in reqs) or "the task"
    if not findings:
        paths = ", ".join(a.path for a in artifacts)
        return QaOutput(passed=True, findings=[], result=ResultOut(
            response=f"QA passed for {task} (attempt {attempt}): {ids} checked against "
                     f"{len(artifacts)} artifact(s): {paths}.",
            additional_info=checks, suggestions=""))
    return QaOutput(passed=False, findings=findings, result=ResultOut(
        response=f"QA failed for {task} (attempt {attempt}):\n"
                 + "\n".join(f"- {f}" for f in findings),
        additional_info=checks + (" The findings come from a review of the tests' coverage."
                                  if seeded else ""),
        suggestions="Address each finding and name the requirement id in the test that covers it."))


def _seeded_findings(ctx: CallContext, seed: int, task: str, attempt: int) -> list[str]:
    reqs = ctx.requirements()
    arts = [a.path for a in ctx.artifacts()]
    code = [p for p in arts if not re.search(r"(^|/)tests?/|test_|\.test\.", p)] or arts
    count = 1 + (unit(seed, ctx.project, task, attempt, "qa-count") < 0.5)
    findings: list[str] = []
    for n in range(count):
        pick = unit(seed, ctx.project, task, attempt, "qa-pick", n)
        if reqs:
            req = reqs[int(pick * len(reqs))]
            parts = clauses(req.text) or [req.text]
            phrase = parts[int(unit(seed, task, attempt, "qa-phrase", n) * len(parts))]
            phrase = " ".join(phrase.split()[:14]).rstrip(",.;")
            label = req.id
        else:
            phrase, label = ctx.task.split("\n", 1)[0][:80] or "the task's behaviour", task
        phrase = decapitalize(phrase)
        if n == 0:
            findings.append(f"{label}: no test covers '{phrase}'.")
        else:
            where = code[int(pick * len(code))] if code else "the implementation"
            findings.append(f"{label}: {where} does not reject invalid input for '{phrase}'.")
    return list(dict.fromkeys(findings))


_KINDS = (
    (re.compile(r"\.py$"), "python"),
    (re.compile(r"\.(html?|js|mjs|css)$"), "web"),
    (re.compile(r"\.tsx?$"), "typescript"),
    (re.compile(r"\.(tf|ya?ml)$"), "infrastructure"),
    (re.compile(r"\.(md|markdown|txt|rst)$"), "docs"),
)
_KIND_TESTS = {
    "python-tests": "collect python tests",
    "web": "static pages load",
    "typescript": "typescript modules bundle",
    "infrastructure": "infrastructure definitions validate",
    "docs": "docs render",
    "other": "other files present",
}


def _kind(path: str) -> str:
    name = posixpath.basename(path)
    kind = next((k for rx, k in _KINDS if rx.search(name.lower())), "other")
    if kind == "python" and (name.startswith("test_") or "/tests/" in f"/{path}"):
        return "python-tests"
    return kind


def deploy_output(ctx: CallContext) -> DeployOutput:
    squad = ctx.squad or "squad"
    arts = ctx.artifacts()
    tests: list[SmokeTestOut] = []
    for art in [a for a in arts if _kind(a.path) == "python"][:12]:
        problems = check_artifacts([art], [], [])
        tests.append(SmokeTestOut(name=f"import {art.path}", passed=not problems,
                                  detail="; ".join(problems) or "module compiles and imports"))
    for kind, name in _KIND_TESTS.items():
        group = [a for a in arts if _kind(a.path) == kind]
        if not group:
            continue
        empty = [a.path for a in group if a.content is not None and not a.content.strip()]
        detail = (f"empty: {', '.join(empty)}" if empty
                  else f"{len(group)} file(s): {', '.join(a.path for a in group[:6])}"
                  + (" ..." if len(group) > 6 else ""))
        tests.append(SmokeTestOut(name=name, passed=not empty, detail=detail))
    healthy = bool(arts) and all(t.passed for t in tests)
    tests.append(SmokeTestOut(name="health check", passed=healthy,
                              detail="the release bundle answers" if healthy
                              else "no artifacts to serve" if not arts else "a smoke test failed"))
    ids = sorted({m.upper() for a in arts for m in REQ_ID.findall(a.content or "")},
                 key=_id_order)
    notes = [f"# Release notes: {squad}", "", f"Project {ctx.project}, squad {squad}: "
             f"{len(arts)} artifact(s) deployed.", "", "## Requirements delivered", ""]
    notes += [f"- {i}" for i in ids] or ["- none named in the artifacts"]
    notes += ["", "## Artifacts", ""]
    notes += [f"- `{a.path}`" + (f" ({len((a.content or '').splitlines())} lines)"
                                 if a.content is not None else "") for a in arts] or ["- none"]
    notes += ["", "## Smoke tests", "", "| test | result | detail |", "|---|---|---|"]
    notes += [f"| {t.name} | {'passed' if t.passed else 'FAILED'} | {t.detail.replace('|', '/')} |"
              for t in tests]
    return DeployOutput(smoke_tests=tests, release_notes_markdown="\n".join(notes) + "\n")


def _id_order(req_id: str) -> tuple[int, list[int]]:
    return (req_id.startswith("NFR"), [int(n) for n in re.findall(r"\d+", req_id)])


def report_output(ctx: CallContext) -> ReportOutput:
    delivered, failed = _outcomes(ctx)
    squad = ctx.squad
    who = f"Squad {squad}" if squad else f"Project {ctx.project}"
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
    reports = [ln.strip() for ln in ctx.section("squad reports", "reports").splitlines()
               if re.match(r"^Squad [\w-]+: ", ln.strip())]
    if reports:
        response += ["", "Squad reports:"] + [f"- {r}" for r in reports]
    ids = sorted({m.upper() for d in delivered for m in REQ_ID.findall(d)}, key=_id_order)
    info = (f"Requirement ids named in the delivered items: {', '.join(ids)}." if ids
            else "The delivered items name no requirement ids; see the squads' backlogs.")
    if ctx.artifacts():
        info += f" {len(ctx.artifacts())} artifact(s) in the context."
    suggestions = (f"Rework or re-plan: {', '.join(_label(f) for f in failed)}." if failed else "")
    return ReportOutput(summary=summary, result=ResultOut(
        response="\n".join(response), additional_info=info, suggestions=suggestions))


def _label(item: str) -> str:
    return item.split()[0].rstrip(":,") if item.split() else item


def _outcomes(ctx: CallContext) -> tuple[list[str], list[str]]:
    """Delivered and failed work: the facts when they list it, else the listed items' status
    (a `[status, ...]` tag first, else words like passed or rework_exhausted)."""
    if "delivered" in ctx.facts or "failed" in ctx.facts:
        return _clipped(ctx.fact_list("delivered")), _clipped(ctx.fact_list("failed"))
    delivered = ctx.bullets("delivered")
    failed = ctx.bullets("failed")
    names = ("tasks", "squads", "modules", "results", "reports", "squad reports")
    for item in [i for name in names for i in ctx.bullets(name)]:
        tag = re.match(r"^\S+\s+\[([\w -]+)", item)
        status = tag.group(1) if tag else item
        if _FAILED.search(status):
            failed.append(item)
        elif _DELIVERED.search(status):
            delivered.append(item)
    return _clipped(delivered), _clipped(failed)


def _clipped(items: Sequence[str]) -> list[str]:
    """Items on one line, without a trailing list of file paths, at most 160 characters."""
    flat = [re.sub(r":\s+(?:[\w.-]*/[\w./-]*(?:,\s*)?)+$", "", " ".join(i.split()))
            for i in items]
    return list(dict.fromkeys(i[:160] for i in flat))
