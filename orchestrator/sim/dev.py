"""The simulated Dev and QA reviewer, reading the call's typed facts: code and tests made
from the requirements' words, a seeded defect on some first attempts, and a review that
claims only what it looked at."""

from __future__ import annotations

import posixpath

from orchestrator.agents.outputs import Blocker, DevOutput, FileOutput, QaOutput, ResultOut
from orchestrator.core.config import OfflineConfig
from orchestrator.core.provider import Facts
from orchestrator.sim.behaviour import derive, slug
from orchestrator.sim.code_model import CodePlan, class_name, defect_options
from orchestrator.sim.files import RUNNABLE, code_files, is_test, language, render
from orchestrator.sim.spec import unit


def safe(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith(("/", "\\")) and ".." not in parts and "" not in parts


def plan_for(facts: Facts, knobs: OfflineConfig, paths: list[str]) -> CodePlan:
    reqs = facts.requirements
    title = facts.text("title") or facts.text("task", "task")
    behaviour = derive([r.text for r in reqs if r.text], title)
    first_try = facts.number("attempt", 1) == 1 and facts.text("reason", "new") == "new"
    # Only a defect its own tests would catch: a bug nobody can see is no test of the flow.
    catchable = any(is_test(p) and language(p) in RUNNABLE for p in paths)
    options = defect_options(behaviour)
    task, project, seed = facts.text("task", "task"), facts.text("project"), knobs.seed
    flawed = catchable and bool(options) and facts.text("reason", "new") in ("new", "rework") \
        and unit(seed, project, task, "defect") < knobs.qa_fail_rate
    stubborn = unit(seed, project, task, "stubborn") < knobs.rework_fail_rate
    defect = ""
    if flawed and (first_try or stubborn):
        defect = options[int(unit(seed, task, "defect-kind") * len(options))]
    return CodePlan(name=class_name(behaviour.thing), title=title.replace('"', "'")[:120],
                    ids=tuple(r.id for r in reqs), behaviour=behaviour, defect=defect)


def keep_both(on_main: str | None, mine: str) -> str:
    """A file the main branch changed too (a merge conflict sent back as rework): its
    content there first, then this task's, so that neither side is lost."""
    if not on_main or on_main == mine or on_main in mine:
        return mine
    return on_main.rstrip("\n") + "\n\n" + mine


def dev_output(facts: Facts, knobs: OfflineConfig) -> DevOutput:
    task = facts.text("task", "task")
    squad = facts.text("squad")
    upstream = [d for d in facts.names("depends_on") if d in facts.names("squads") and d != squad]
    first_try = facts.number("attempt", 1) == 1 and facts.text("reason", "new") == "new"
    if first_try and upstream and \
            unit(knobs.seed, facts.text("project"), task, "block") < knobs.blocker_rate:
        target = upstream[0]
        description = (f"{task} needs the interfaces of {target}: the names, data shapes and "
                       f"error cases it must use.")
        return DevOutput(files=[], blocked=True, blocker=Blocker(squad=target,
                                                                 description=description),
                         result=ResultOut(response=f"Blocked by {target}: {description}",
                                          additional_info="No files were written.",
                                          suggestions=f"Ask {target} (through the CTO) for its "
                                                      f"interfaces, then reactivate {task}."))
    wanted = [p for p in facts.expected_files if safe(p)] or [
        f"docs/{slug(facts.text('title') or task, sep='-')}.md"]
    paths = code_files(wanted)
    plan = plan_for(facts, knobs, paths)
    files = [FileOutput(path=p, content=keep_both(facts.files.get(p), render(p, plan, paths)))
             for p in paths]
    b = plan.behaviour
    lines = [f"- {r.id}: {plan.name} keeps {b.thing} records ({', '.join(b.operations)})"
             for r in facts.requirements] or [f"- {plan.name} ({', '.join(b.operations)})"]
    response = f"Built {task} ({plan.title}) in {len(files)} file(s):\n" + "\n".join(
        lines + [f"- {f.path}" for f in files])
    if facts.findings:
        response += "\nQA findings of the last attempt, each fixed in this one:\n" + "\n".join(
            f"- {f.splitlines()[0][:200]}" for f in facts.findings)
    skipped = [p for p in facts.expected_files if not safe(p)]
    info = "Tests load their module by path, so they pass from any folder."
    if skipped:
        info += f" Refused unsafe path(s): {', '.join(skipped)}."
    return DevOutput(files=files, blocked=False, blocker=None,
                     result=ResultOut(response=response, additional_info=info, suggestions=""))


def qa_output(facts: Facts) -> QaOutput:
    """A review of what the call shows: files present and not empty, each requirement's id in
    some file. The checks are QA's own runs; this review only repeats what they said."""
    task = facts.text("task", "task")
    empty = sorted(p for p, text in facts.files.items() if not text.strip())
    absent = sorted(p for p in facts.expected_files if p not in facts.files)
    text = "\n".join(facts.files.values())
    unnamed = [r.id for r in facts.requirements if r.id and r.id not in text]
    findings = ([f"{p} is empty." for p in empty] + [f"{p} was not delivered." for p in absent]
                + [f"{rid}: no file names {rid}." for rid in unnamed])
    ran = {state: facts.names(f"checks_{state}") for state in ("passed", "failed", "not_run")}
    checks = "; ".join(f"{state.replace('_', ' ')}: {', '.join(names)}"
                       for state, names in ran.items() if names) or "no check applied"
    shown = ", ".join(posixpath.basename(p) for p in sorted(facts.files)) or "no file"
    verdict = "passed" if not findings else "failed"
    return QaOutput(passed=not findings, findings=findings, result=ResultOut(
        response=f"Review of {task} {verdict}: read {shown}."
                 + "".join(f"\n- {f}" for f in findings),
        additional_info=f"QA's checks ({checks}) decide with this review; the review itself "
                        f"ran nothing.",
        suggestions=""))

