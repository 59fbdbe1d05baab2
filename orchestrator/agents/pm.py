"""PM: one per squad, a sub-orchestrator: turns the squad's scope into a backlog (splitting
macro tasks into subtasks), asks other squads for things through the CTO, assigns block
fixes, and consolidates the squad's report."""

from __future__ import annotations

from orchestrator.agents import reports
from orchestrator.agents.base import (
    AgentContext,
    AgentOutput,
    answered,
    ask,
    docs_path,
    facts,
    known,
    requirement_facts,
    requirements_block,
    squad_path,
)
from orchestrator.agents.outputs import BacklogOutput, FixTaskOutput, PlannedTask, ReportOutput
from orchestrator.core import events as ev
from orchestrator.core.checks import requirement_key, uncovered_by_backlog
from orchestrator.core.flow import Reaction, squad_outcome
from orchestrator.core.messages import Brief
from orchestrator.core.state import Module, ProjectState, Task, TaskStatus

MAX_TASKS = 60


def plan_backlog(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    mod = s.modules[r.subject]
    squads = sorted(s.modules)
    extra: dict[str, object] = {}
    if s.round > 1 and s.change_requests:
        extra["change_request"] = s.change_requests[-1]
    if s.round > 1 and s.spec_review_round == s.round:
        # What moved in the spec since the last round, as it concerns this squad.
        for kind in ("added", "changed"):
            extra[kind] = [r for r in s.round_changes.get(kind, []) if r in mod.requirements]
        extra["removed"] = list(s.round_changes.get("removed", []))
    out = AgentOutput()
    brief = Brief(
        task=f"Plan the backlog of squad {mod.name}: tasks covering its requirements, with "
             "the files each must produce; split macro tasks into subtasks where it helps.",
        context="\n\n".join([
            facts(project=s.id, squad=mod.name, squads=squads, depends_on=mod.depends_on,
                  round=s.round, max_depth=ctx.config.max_decomposition_depth, **extra),
            f"## Scope\n{mod.scope}",
            requirements_block(s, mod.requirements),
        ]),
        expected_return="The backlog, and any dependency requests to other squads.",
    )
    depth = ctx.config.max_decomposition_depth

    def covers_the_squad(answer: BacklogOutput) -> list[str]:
        # A change round's backlog adds to the squad's earlier tasks, which still count.
        planned = [t.requirements for t in _within_depth(answer.tasks[:MAX_TASKS], depth)]
        planned += [t.requirements for t in s.tasks.values() if t.module == mod.name]
        missing = uncovered_by_backlog(mod.requirements, planned)
        return [f"no task covers {rid}, a requirement of squad {mod.name}" for rid in missing]

    own = list(dict.fromkeys([*mod.requirements, *s.requirement_details]))
    given = known({"project": s.id, "squad": mod.name, "squads": squads,
                   "depends_on": mod.depends_on, "round": s.round, "scope": mod.scope,
                   "max_depth": ctx.config.max_decomposition_depth, **extra},
                  requirement_facts(s, mod.requirements))
    backlog = ask(ctx, r, "pm", brief, BacklogOutput, out, given,
                  check=covers_the_squad if mod.requirements else None,
                  choices={"tasks.requirements": own, "tasks.subtasks.requirements": own})
    tasks = list(backlog.tasks)[:MAX_TASKS] or [_fallback_task(mod)]
    prefix = mod.name if s.round == 1 else f"{mod.name}-r{s.round}"
    keys = _assign_ids(tasks, prefix)
    lines = [f"# Backlog of {mod.name} (round {s.round})", ""]
    for n, task in enumerate(tasks, start=1):
        _emit_task(ctx, r, out, mod, task, f"{prefix}-{n}", keys, parent="", depth=0,
                   lines=lines)
    for i, need in enumerate(backlog.dependency_requests[:10], start=1):
        if need.to_squad in s.modules and need.to_squad != mod.name:
            out.emit(r, ev.DependencyRequest(
                dependency_id=f"dep-{prefix}-{i}", from_squad=mod.name, to_squad=need.to_squad,
                need=need.need[:2000], task_id=keys.get(need.task_key, "")))
    link = out.write(docs_path(s.id, f"backlog-{prefix}.md"), "\n".join(lines) + "\n")
    out.events[0] = out.events[0].model_copy(update={"links": (link,)})
    return out


def _within_depth(tasks: list[PlannedTask], depth: int) -> list[PlannedTask]:
    """The tasks a backlog really plans: subtasks past the depth limit are discarded."""
    found: list[PlannedTask] = []
    for task in tasks:
        found.append(task)
        if depth > 0:
            found.extend(_within_depth(list(task.subtasks)[:10], depth - 1))
    return found


def _fallback_task(mod: Module) -> PlannedTask:
    return PlannedTask(key="T1", title=f"Deliver the scope of {mod.name}",
                       requirements=list(mod.requirements), depends_on=[],
                       expected_files=["README.md"], brief=mod.scope or "Deliver the scope.",
                       subtasks=[])


def _assign_ids(tasks: list[PlannedTask], prefix: str) -> dict[str, str]:
    """The model's keys mapped to our ids (first use of a key wins, for dependencies)."""
    keys: dict[str, str] = {}

    def walk(items: list[PlannedTask], base: str, sep: str) -> None:
        for n, task in enumerate(items, start=1):
            keys.setdefault(task.key, f"{base}{sep}{n}")
            walk(list(task.subtasks), f"{base}{sep}{n}", ".")

    walk(tasks, prefix, "-")
    return keys


def _emit_task(ctx: AgentContext, r: Reaction, out: AgentOutput, mod: Module,
               task: PlannedTask, tid: str, keys: dict[str, str], parent: str, depth: int,
               lines: list[str]) -> None:
    """Our ids are positional (`<squad>-<n>`, subtasks `<parent>.<n>`), never the model's."""
    s = ctx.state
    files = [squad_path(s.id, mod.name, f) for f in task.expected_files[:10]]
    known = {requirement_key(q): q for q in [*s.requirement_details, *mod.requirements]}
    reqs = list(dict.fromkeys(known[requirement_key(q)] for q in task.requirements
                              if requirement_key(q) in known))
    # Only on tasks planned before this one and not on its own ancestors: no cycles.
    earlier = {e.payload.subject() for e in out.events if e.type == "task.assigned"}
    deps = sorted({keys[d] for d in task.depends_on if keys.get(d) in earlier
                   and not tid.startswith(keys[d] + ".")})
    dev_brief = Brief(
        task=f"{task.title}\n\n{task.brief}",
        context="\n\n".join([
            facts(project=s.id, squad=mod.name, task=tid, round=s.round),
            requirements_block(s, reqs),
        ]),
        expected_files=tuple(files),
        expected_return="The files written, and what each requirement got.",
    ).render()
    out.emit(r, ev.TaskAssigned(
        task_id=tid, module=mod.name, title=task.title[:200], requirements=reqs,
        depends_on=deps, parent=parent, brief=dev_brief, expected_files=files,
        reason="new" if s.round == 1 else "changes"))
    lines.append(f"{'  ' * depth}- {tid}: {task.title} ({', '.join(reqs) or '-'})")
    subtasks = list(task.subtasks)[:10] if depth < ctx.config.max_decomposition_depth else []
    if subtasks:
        sub_ids = [f"{tid}.{n}" for n in range(1, len(subtasks) + 1)]
        out.emit(r, ev.TaskDecomposed(task_id=tid, subtasks=sub_ids))
        for sub, sub_id in zip(subtasks, sub_ids, strict=True):
            _emit_task(ctx, r, out, mod, sub, sub_id, keys, parent=tid, depth=depth + 1,
                       lines=lines)


def fix_task(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    block = s.blocks[r.subject]
    squad = r.squad
    blocked = s.tasks.get(block.task_id)
    out = AgentOutput()
    brief = Brief(
        task=f"Squad {block.reported_by} is blocked by squad {squad}: plan the fix task.",
        context="\n\n".join([
            facts(project=s.id, squad=squad, block=block.id, blocked_squad=block.reported_by),
            f"## Block\n{block.description}",
            requirements_block(s, blocked.requirements if blocked else []),
        ]),
        expected_return="One fix task with its files.",
    )
    given = known({"project": s.id, "squad": squad, "block": block.id,
                   "blocked_squad": block.reported_by, "description": block.description},
                  requirement_facts(s, blocked.requirements if blocked else []))
    fix = ask(ctx, r, "pm", brief, FixTaskOutput, out, given)
    tid = f"fix-{block.id}"
    files = [squad_path(s.id, squad, f) for f in fix.expected_files[:10]] or [
        squad_path(s.id, squad, f"fixes/{block.id}.md")]
    dev_brief = Brief(
        task=f"{fix.title}\n\n{fix.brief}",
        context=f"{facts(project=s.id, squad=squad, task=tid, block=block.id)}\n\n"
                f"## Block\n{block.description}",
        expected_files=tuple(files),
        expected_return="The fix, and how it unblocks the other squad.",
    ).render()
    out.emit(r, ev.TaskAssigned(
        task_id=tid, module=squad, title=fix.title[:200],
        requirements=[q for q in fix.requirements if q in s.requirement_details],
        reason="fix", fixes_block=block.id, brief=dev_brief, expected_files=files))
    return out


def squad_report(ctx: AgentContext, r: Reaction) -> AgentOutput:
    s = ctx.state
    mod = s.modules[r.subject]
    outcome = squad_outcome(s, mod)
    out = AgentOutput()
    brief = Brief(
        task=f"Consolidate the report of squad {mod.name}: tasks, QA, deploy.",
        context="\n\n".join([
            facts(project=s.id, squad=mod.name, outcome=outcome, round=s.round),
            _task_table(s, mod),
        ]),
        expected_return="What the squad delivered, what failed, and open risks.",
    )
    mine = [t for t in s.tasks.values() if t.module == mod.name]
    given = known({"project": s.id, "squad": mod.name, "outcome": outcome, "round": s.round,
                   "delivered": [_item(t) for t in mine if t.status == TaskStatus.PASSED],
                   "failed": [_item(t) for t in mine if t.status in FAILED_TASK]})
    report = ask(ctx, r, "pm", brief, ReportOutput, out, given)
    answered(brief, report.result, out.files)  # the answer is held against its brief first
    link = out.write(docs_path(s.id, f"squad-{mod.name}-round{s.round}-report.md"),
                     reports.squad_report(s, mod, outcome, report.summary, report.result))
    out.emit(r, ev.ModuleCompleted(module=mod.name, report=link.ref, outcome=outcome),
             links=[link])
    return out


FAILED_TASK = frozenset({TaskStatus.REWORK_EXHAUSTED, TaskStatus.BLOCKED, TaskStatus.ABANDONED})


def _item(task: Task) -> str:
    return f"{task.id} {task.title}"


def _task_table(s: ProjectState, mod: Module) -> str:
    lines = ["## Tasks"]
    for t in s.tasks.values():
        if t.module == mod.name:
            lines.append(f"- {t.id} [{t.status.value}, attempt {t.attempt}] {t.title}: "
                         f"{', '.join(t.artifacts) or 'no artifacts'}")
    if mod.bundle:
        lines.append(f"\nRelease bundle: {mod.bundle}")
    return "\n".join(lines)
