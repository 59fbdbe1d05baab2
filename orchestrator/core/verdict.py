"""Which checks QA runs on a squad's files, and the verdict their outcomes allow (pure)."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from orchestrator.core.config import QaConfig
from orchestrator.core.events import CheckOutcome

MAX_FINDING_CHARS = 4000


@dataclass(frozen=True)
class PlannedCheck:
    name: str
    command: str
    """A shell command run from the project's folder."""
    tool: str
    """The program that must be installed for the check to run at all."""


def matches(path: str, pattern: str) -> bool:
    """A glob on a relative path; a leading `**/` matches at any depth, the top included."""
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return fnmatchcase(path, tail) or fnmatchcase(path, "*/" + tail)
    return fnmatchcase(path, pattern)


def tool_of(command: str) -> str:
    """The program a shell command starts with, past `VAR=value` assignments."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for word in words:
        if "=" not in word.split("/")[0]:
            return word
    return words[0] if words else ""


def plan_checks(qa: QaConfig, squad: str, squad_files: Sequence[str]) -> list[PlannedCheck]:
    """Per language, the checks that apply to these files (paths relative to the squad's
    folder), then the squad's own checks from config."""
    planned: list[PlannedCheck] = []
    for name, lang in sorted(qa.language_checks().items()):
        hits = sorted(f"{squad}/{f}" for f in squad_files
                      if any(matches(f, p) for p in lang.detect))
        if not hits:
            continue
        tool = tool_of(lang.command)
        if "{dir}" in lang.command:
            for folder in sorted({posixpath.dirname(h) for h in hits}):
                inside = [h for h in hits if posixpath.dirname(h) == folder]
                planned.append(PlannedCheck(f"{name} {folder}", _fill(lang.command, inside, folder),
                                            tool))
        else:
            planned.append(PlannedCheck(name, _fill(lang.command, hits, squad), tool))
    for check in qa.squad_checks(squad):
        planned.append(PlannedCheck(check.name, f"cd {shlex.quote(squad)} && {check.command}",
                                    tool_of(check.command)))
    return planned


def _fill(command: str, files: Sequence[str], folder: str) -> str:
    return (command.replace("{files}", " ".join(shlex.quote(f) for f in files))
            .replace("{dir}", shlex.quote(folder)))


@dataclass(frozen=True)
class Verdict:
    passed: bool
    findings: list[str]


def judge(outcomes: Sequence[CheckOutcome], missing: Sequence[str], review_passed: bool,
          review_findings: Sequence[str]) -> Verdict:
    """Failed checks and missing files fail the task whatever the review says; a check that
    did not run neither passes nor fails it (the report says it did not run)."""
    findings = [f"check {o.name} failed: `{o.command}`\n{o.detail}"[:MAX_FINDING_CHARS]
                for o in outcomes if o.status == "failed"]
    findings += [f"expected file missing: {p}" for p in missing]
    if not review_passed:
        findings += [f[:1000] for f in review_findings][:20] or ["the review did not pass"]
    return Verdict(passed=not findings, findings=findings)


def summary(outcomes: Sequence[CheckOutcome]) -> str:
    """One line per check for the QA report, as a person would rerun it."""
    if not outcomes:
        return "No check applies to these files: nothing was run."
    lines = []
    for o in outcomes:
        state = "not run" if o.status == "not_run" else o.status
        note = f" ({o.detail.splitlines()[0]})" if o.status == "not_run" and o.detail else ""
        lines.append(f"- {o.name}: {state}{note} — `{o.command}`")
    return "\n".join(lines)
