"""The `orch` command line: thin click commands over the runtime; one error handler."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from orchestrator.errors import OrchError, UsageError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="orch")
def cli() -> None:
    """orch: a git-native orchestrator for teams of LLM agents."""


def _json(data: Any) -> None:
    from orchestrator.adapters.output import print_json

    print_json(data)


def _event_json(event: Any) -> dict[str, Any]:
    return {"id": event.id, "seq": event.seq, "type": event.type, "project": event.project}


def _workspace(use_cache: bool = True) -> Any:
    from orchestrator.runtime.workspace import Workspace

    return Workspace.open(Path.cwd(), use_cache=use_cache)


@cli.command()
@click.option("--github", is_flag=True,
              help="Also write .github/workflows/orch.yml, which runs the team on Actions.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(github: bool, as_json: bool) -> None:
    """Create the orch layout here (git-initialising the directory if needed)."""
    from orchestrator.runtime.workspace import Workspace

    ws, created = Workspace.init(Path.cwd(), github=github)
    if as_json:
        _json({"root": str(ws.root), "created": created})
    elif created:
        click.echo(f"Initialised orch in {ws.root}: " + ", ".join(created))
    else:
        click.echo(f"orch is already set up in {ws.root}")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of every event type."""
    from orchestrator.adapters.output import print_json
    from orchestrator.runtime.commands import event_schemas

    print_json(event_schemas())


@cli.command()
@click.argument("event_type")
@click.option("--project", "-P", required=True, help="Project id.")
@click.option("-p", "pairs", multiple=True, metavar="KEY=VALUE", help="Payload field.")
@click.option("--payload-file", type=click.Path(dir_okay=False), help="YAML/JSON payload.")
@click.option("--actor", help="role[.squad]; defaults to the role that emits this type.")
@click.option("--causation", help="Id of the event this one reacts to.")
@click.option("--request-id", help="Correlation id of the chain.")
@click.option("--force", is_flag=True, help="Write even if the fold would refuse the event.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def emit(event_type: str, project: str, pairs: tuple[str, ...], payload_file: str | None,
         actor: str | None, causation: str | None, request_id: str | None, force: bool,
         as_json: bool) -> None:
    """Append one event to a project's log (validated before anything is written)."""
    from orchestrator.runtime.commands import emit_event

    event = emit_event(_workspace(), event_type, project, pairs, payload_file, actor=actor,
                       causation=causation, request_id=request_id, force=force)
    if as_json:
        _json(_event_json(event))
    else:
        click.echo(f"{event.type} seq={event.seq} id={event.id}")


@cli.command()
@click.argument("project", required=False)
@click.option("--out", type=click.Path(dir_okay=False), help="Write it to this file too.")
def report(project: str | None, out: str | None) -> None:
    """A Markdown report people read: status, a squads graph and a Gantt of the tasks."""
    from orchestrator.runtime.status import report_markdown

    text = report_markdown(_workspace(), project)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    click.echo(text, nl=False)


@cli.command()
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--at", "rev", help="Fold the log as it was at this commit.")
def status(project: str | None, as_json: bool, rev: str | None) -> None:
    """Where every project stands: squads, tasks, blocks, alerts, usage."""
    from orchestrator.adapters.output import print_json, print_status
    from orchestrator.runtime.status import status_views

    views, stray = status_views(_workspace(), project, rev)
    if as_json:
        print_json({"projects": views, "findings": stray})
    else:
        print_status(views, stray)


@cli.command()
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the events.")
@click.option("--type", "types", multiple=True, help="Only events of this type.")
def log(project: str | None, as_json: bool, types: tuple[str, ...]) -> None:
    """The events of the log in fold order."""
    from orchestrator.adapters.output import print_json
    from orchestrator.runtime.commands import log_events

    events = log_events(_workspace(), project, types)
    if as_json:
        print_json([e.to_document() for e in events])
        return
    for e in events:
        subject = e.payload.subject()
        click.echo(f"{e.project} {e.seq:>6} {e.at:%Y-%m-%d %H:%M:%S} {e.type:<26} "
                   f"{e.actor:<18} {subject if ':' not in subject else ''}".rstrip())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable findings.")
def verify(as_json: bool) -> None:
    """Audit the whole history of the log; exit 1 naming each problem."""
    from orchestrator.adapters.output import print_json
    from orchestrator.core.views import finding_view
    from orchestrator.runtime.verify import verify as run_verify

    findings, forced = run_verify(_workspace(use_cache=False))
    if as_json:
        print_json({"ok": not findings, "findings": [finding_view(f) for f in findings],
                    "forced": [finding_view(f) for f in forced]})
    else:
        for f in findings:
            click.echo(f.describe())
        for f in forced:
            click.echo(f"forced (orch emit --force): {f.describe()}")
        click.echo("log verified: clean" if not findings else f"{len(findings)} problem(s) found")
    if findings:
        raise SystemExit(1)


@cli.command()
@click.argument("spec", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def submit(spec: str, as_json: bool) -> None:
    """Make a spec a project (committing the spec first if it is not committed)."""
    from orchestrator.runtime.projects import submit as submit_spec

    project, new = submit_spec(_workspace(), spec)
    if as_json:
        _json({"project": project, "created": new, "spec": spec})
    else:
        click.echo(f"{'Created' if new else 'Already a'} project '{project}' from {spec}")


@cli.command()
@click.argument("spec", required=False, type=click.Path())
@click.option("--replay", is_flag=True, help="Answer from the committed transcripts, offline.")
@click.option("--dry-run", is_flag=True, help="List the specs that would start, and the cost.")
@click.option("--json", "as_json", is_flag=True,
              help="The outcome as one JSON object (event lines go to stderr).")
def run(spec: str | None, replay: bool, dry_run: bool, as_json: bool) -> None:
    """Reconcile until the project completes (or all projects idle); Ctrl-C stops cleanly."""
    ws = _workspace()
    if dry_run:
        _dry_run(ws, as_json)
        return
    _run_and_summarise(ws, spec, replay, as_json)


@cli.command(name="apply")
@click.argument("directories", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--author", type=(click.Choice(["accept", "request-changes"]), str),
              default=None, metavar="COMMAND PROJECT",
              help="What the spec's author asked this run for (its event may come in the bundle).")
@click.option("--push", is_flag=True,
              help="Fetch first, then push the result with its task branches (never forced; "
                   "a lost race is fetched, rebased and retried).")
def apply_cmd(directories: tuple[str, ...], as_json: bool,
              author: tuple[str, str] | None, push: bool) -> None:
    """Check plans' bundles, in order, against the current log, then commit them (or nothing):
    what another worker did or claimed since a plan began is dropped with a notice."""
    from orchestrator.adapters.config_file import load_config
    from orchestrator.adapters.output import print_json
    from orchestrator.runtime.bundle_apply import apply_bundles
    from orchestrator.runtime.sync import publish, sync

    ws = _workspace()
    ws.repo.preflight()
    remote = ws.repo.remote() if push else None
    if push and remote is None:
        raise UsageError(f"{ws.root} has no remote to push to; drop --push, or add one")
    if remote is not None:
        sync(ws, remote)  # the log as the remote has it, and the task branches with it
    done = apply_bundles(ws, [Path(d) for d in directories], load_config(ws.root), author)
    pushed = publish(ws, remote) if remote is not None else None
    if pushed is not None:
        done.dropped += pushed.dropped
    if as_json:
        print_json({**done.as_dict(), "pushed": bool(pushed and pushed.pushed)})
        return
    for line in done.dropped:
        click.echo(f"Dropped (done or claimed elsewhere since the plan): {line}")
    click.echo(f"Applied {done.events} event(s) and {done.files} file(s) from "
               f"{len(directories)} bundle(s) ({done.already_applied} already in the log, "
               f"{len(done.dropped)} dropped)")


@cli.command()
@click.option("--json", "as_json", is_flag=True,
              help='One line for a workflow matrix: {"include": [lane, ...]}.')
@click.option("--next-sweep", "started_today", type=click.IntRange(min=0), default=None,
              metavar="RUNS", help="Exit 0 if the workflow should start another run, given "
              "how many it started today; 1 if not (the reason is printed).")
def lanes(as_json: bool, started_today: int | None) -> None:
    """The independent parts of the pending work (a plan job each), or whether to chain."""
    import json

    from orchestrator.adapters.config_file import load_config
    from orchestrator.core.lanes import next_sweep
    from orchestrator.runtime.plan import lanes as pending_lanes

    ws = _workspace()
    config = load_config(ws.root)
    found = pending_lanes(ws, config)
    if started_today is not None:
        due, why = next_sweep(found, started_today, config.github.max_sweeps_per_day)
        click.echo(f"{'next sweep' if due else 'no next sweep'}: {why}")
        if not due:
            raise SystemExit(1)
    elif as_json:
        click.echo(json.dumps({"include": [lane.as_dict() for lane in found]},
                              separators=(",", ":")))
    else:
        for lane in found:
            click.echo(f"{lane.name}" + (f" (starts from {lane.spec})" if lane.spec else ""))
        click.echo(f"{len(found)} lane(s) of pending work")


def _run_and_summarise(ws: Any, spec: str | None, replay: bool, as_json: bool) -> None:
    from orchestrator.adapters.output import LiveProgress
    from orchestrator.runtime.runner import run as run_engine

    if sys.stdout.isatty() and not as_json:
        with LiveProgress() as live:
            report, projects = run_engine(ws, spec, replay=replay, echo=live.log,
                                          progress=live.update)
    else:
        report, projects = run_engine(ws, spec, replay=replay,
                                      echo=lambda line: click.echo(line, err=as_json))
    _summary(ws, report, projects, projects[0] if spec else None, as_json)


def _dry_run(ws: Any, as_json: bool) -> None:
    from orchestrator.adapters.config_file import load_config
    from orchestrator.runtime.preview import preview_specs

    previews = preview_specs(ws, load_config(ws.root))
    if as_json:
        _json({"specs": [{"path": p.path, "starts": p.starts, "note": p.note}
                         for p in previews]})
        return
    for p in previews:
        click.echo(f"{'would start' if p.starts else 'skipped':<12} {p.path}: {p.note}")
    click.echo(f"{sum(p.starts for p in previews)} spec(s) would start a project; "
               "nothing was written")


_FINISHED = ("completed", "accepted", "cancelled")


def _summary(ws: Any, report: Any, projects: list[str], target: str | None,
             as_json: bool) -> None:
    views = ws.reader.views(projects)
    # Scripts can tell a run that did not deliver from one that did: a failed squad, or an
    # asked-for project that did not complete (a cancelled one is finished, not failed).
    problems = [f"{p}: squad {m['name']} failed" for p, v in sorted(views.items())
                if v["status"] not in ("accepted", "cancelled")
                for m in v["modules"] if m["status"] == "failed" and m["round"] == v["round"]]
    target_status = views.get(target, {}).get("status", "unknown") if target else ""
    if target is not None and target_status not in _FINISHED:
        problems.append(f"{target} did not complete (it is {target_status})")
    elif report.failures:
        problems += [f"{p} did not complete (it is {v['status']})"
                     for p, v in sorted(views.items()) if v["status"] not in _FINISHED]
    if as_json:
        _json({"projects": [{"id": p, "status": v["status"], "events": v["events"]}
                            for p, v in sorted(views.items())],
               "failures": report.failures, "stopped": report.stopped,
               "dropped": report.dropped, "problems": problems,
               "waiting": [{"project": p, "reaction": label} for p, label in report.waiting]})
    else:
        for project, view in sorted(views.items()):
            click.echo(f"{project}: {view['status']} ({view['events']} events)")
            if view["status"] == "completed":
                click.echo(f"  awaiting the author: 'orch accept {project}' or "
                           f"'orch request-changes {project} --message ...'")
            in_review = [t["id"] for t in view["tasks"] if t["status"] == "in_review"]
            if in_review:
                click.echo(f"  {len(in_review)} task(s) wait for review: 'orch review "
                           f"{project}', then 'orch approve' or 'orch reject' each")
        if report.stopped and report.dropped:
            click.echo(f"Stopped: {report.dropped} reaction(s) in flight were dropped and run "
                       "again next time.")
        elif report.stopped:
            click.echo("Stopped: what was finished is committed; the next run goes on.")
        elif report.failures:
            # The reasons themselves, last: what a person reads when a run could not finish.
            click.echo(f"{len(report.failures)} reaction(s) failed closed:")
            for failure in report.failures:
                click.echo(f"  {failure}")
            for project, label in report.waiting:
                click.echo(f"  [{project}] {label} now waits for a person: "
                           f"'orch retry {project} {label}'")
    if report.stopped:
        raise SystemExit(130)
    for line in report.held:
        click.echo(f"Waiting on another worker: {line}", err=as_json)
    if report.held:
        problems += [f"{p} waits on claims another worker holds"
                     for p, v in sorted(views.items()) if v["status"] not in _FINISHED]
    if problems:
        raise OrchError("; ".join(problems) + "; see 'orch status'")


@cli.command()
@click.option("--until-idle", is_flag=True, help="Sweep again until no work is left.")
@click.option("--max-seconds", type=click.FloatRange(min=0), default=None,
              help="Stop after this long (work in flight is dropped and redone later).")
@click.option("--role", default=None, help="Take only this role's work (cto, pm, dev, ...).")
@click.option("--squad", default=None, help="Take only this squad's work.")
@click.option("--plan-only", is_flag=True,
              help="Work in this clone until idle or --max-seconds (default github."
              "plan_seconds), push nothing, and write the work as a bundle (--out).")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="With --plan-only: the new folder the bundle is written to.")
@click.option("--project", default=None, help="With --plan-only: only this project's work "
              "(starting it from its spec when it is new).")
@click.option("--json", "as_json", is_flag=True, help="Print what the sweeps did as JSON.")
def dispatch(until_idle: bool, max_seconds: float | None, role: str | None,
             squad: str | None, plan_only: bool, out: str | None, project: str | None,
             as_json: bool) -> None:
    """Reconcile sweeps against the remote: fetch, claim, push the claims, work, push."""
    from orchestrator.adapters.output import print_json
    from orchestrator.runtime.dispatch import dispatch as run_dispatch

    if plan_only or out or project:
        if not (plan_only and out):
            raise UsageError("--plan-only and --out go together (and --project needs them): "
                             "'orch dispatch --plan-only --out DIR'")
        from orchestrator.runtime.plan import plan

        done = plan(_workspace(), Path(out), max_seconds=max_seconds, project=project or None,
                    squad=squad or None, role=role or None,
                    echo=(lambda _: None) if as_json else click.echo)
        if as_json:
            print_json(done.as_dict())
            return
        click.echo(f"Planned {done.events} event(s) as worker {done.worker}; bundle: "
                   f"{done.paths} file(s) in {out}"
                   + (f" ({done.in_flight} claim(s) of unfinished work left out)"
                      if done.in_flight else ""))
        for project_id, status in sorted(done.projects.items()):
            click.echo(f"{project_id}: {status}")
        return
    report = run_dispatch(_workspace(), until_idle=until_idle, max_seconds=max_seconds,
                          role=role, squad=squad,
                          echo=(lambda _: None) if as_json else click.echo)
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(f"{report.sweeps} sweep(s): {report.events} event(s), {report.pushes} "
                   f"push(es), {report.rejections} lost race(s), {len(report.dropped)} "
                   f"dropped as done or claimed elsewhere")
        for line in report.held:
            click.echo(f"Waiting on another worker: {line}")
        for project, status in sorted(report.projects.items()):
            click.echo(f"{project}: {status}")
    unfinished = [p for p, s in report.projects.items() if s not in ("completed", "accepted")]
    if unfinished and (report.failures or report.held):
        raise SystemExit(1)


@cli.command()
@click.option("--poll", "poll_s", default=30.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds between passes when nothing is seen changing.")
def watch(poll_s: float) -> None:
    """Reconcile now and whenever a spec or an event is written, until Ctrl-C."""
    from orchestrator.runtime.runner import watch as watch_repo

    passes = watch_repo(_workspace(), echo=click.echo, poll_s=poll_s)
    click.echo(f"Stopped watching after {passes} pass(es).")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def demo(directory: str | None) -> None:
    """A fresh repository with the example spec, the whole run, then its status."""
    from orchestrator.adapters.output import print_status
    from orchestrator.runtime.runner import demo as run_demo
    from orchestrator.runtime.status import status_views

    ws = run_demo(Path(directory) if directory else None, echo=click.echo)
    views, stray = status_views(ws, None, None)
    print_status(views, stray)
    me = Path(sys.argv[0])
    orch = "orch" if not me.is_file() or shutil.which("orch") == str(me) else str(me.resolve())
    click.echo(f"Explore it: cd {ws.root} && git log --oneline && {orch} status")


@cli.command()
@click.argument("project")
@click.option("--message", "-m", default="", help="A note for the log.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def accept(project: str, message: str, as_json: bool) -> None:
    """The spec's author accepts a completed project."""
    from orchestrator.runtime.projects import accept as accept_project

    event = accept_project(_workspace(), project, message)
    if as_json:
        _json(_event_json(event))
    else:
        click.echo(f"Accepted '{project}' (event {event.id})")


@cli.command()
@click.argument("project", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def review(project: str | None, as_json: bool) -> None:
    """List the tasks whose branches wait for a person (review: human)."""
    from dataclasses import asdict

    from orchestrator.runtime.review import waiting

    items = waiting(_workspace(), project)
    if as_json:
        _json({"waiting": [asdict(i) for i in items]})
        return
    if not items:
        click.echo("Nothing waits for review.")
    for i in items:
        state = " (approved, merged by the next run)" if i.approved else ""
        click.echo(f"{i.project} {i.task} [{i.squad}] {i.branch} QA {i.verdict}: "
                   f"{len(i.files)} file(s), +{i.lines_added} -{i.lines_removed}{state}")
        for path in i.files:
            click.echo(f"    {path}")


@cli.command()
@click.argument("project")
@click.argument("task")
@click.option("--message", "-m", default="", help="A note recorded with the approval.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def approve(project: str, task: str, message: str, as_json: bool) -> None:
    """Approve a task in review: its branch is merged into the checked-out branch."""
    from orchestrator.runtime.review import approve as approve_task
    from orchestrator.runtime.review import reviewer

    ws = _workspace()
    decision = approve_task(ws, project, task, by=reviewer(ws), note=message)
    if as_json:
        _json({"merged": decision.merged, "conflicts": list(decision.conflicts),
               "events": [_event_json(e) for e in decision.events]})
    elif decision.merged:
        click.echo(f"Approved {task}: merged into {ws.repo.branch()}")
    else:
        click.echo(f"Error: {task} conflicts with {ws.repo.branch()} in "
                   f"{', '.join(decision.conflicts)}: not merged; sent back to its Dev as "
                   "rework", err=True)
    if not decision.merged:
        raise SystemExit(1)  # asked to merge, and nothing was merged


@cli.command()
@click.argument("project")
@click.argument("task")
@click.option("--message", "-m", required=True, help="What to change: the rework's findings.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reject(project: str, task: str, message: str, as_json: bool) -> None:
    """Send a task in review back to its Dev with the message as findings (a rework)."""
    from orchestrator.runtime.review import reject as reject_task
    from orchestrator.runtime.review import reviewer

    ws = _workspace()
    decision = reject_task(ws, project, task, [message], by=reviewer(ws))
    if as_json:
        _json({"events": [_event_json(e) for e in decision.events]})
    else:
        click.echo(f"Rejected {task}: back to its Dev ('orch run' works it again)")


@cli.command()
@click.argument("project")
@click.option("--message", "-m", required=True, help="Why the project ends.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cancel(project: str, message: str, as_json: bool) -> None:
    """End a project: its reactions stop, its history stays in the log."""
    from orchestrator.runtime.projects import cancel as cancel_project

    event = cancel_project(_workspace(), project, message)
    if as_json:
        _json(_event_json(event))
    else:
        click.echo(f"Cancelled '{project}' (event {event.id})")


@cli.command()
@click.argument("project")
@click.argument("reaction", required=False)
def retry(project: str, reaction: str | None) -> None:
    """Let reactions that failed closed too often run again (REACTION as 'orch status' names
    it, e.g. plan_backlog:backend; all waiting ones when omitted)."""
    from orchestrator.runtime.projects import retry as retry_reactions

    for label in retry_reactions(_workspace(), project, reaction):
        click.echo(f"{project}: {label} will be tried again by the next 'orch run'")


@cli.command("request-changes")
@click.argument("project")
@click.option("--message", "-m", required=True, help="What to change.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def request_changes(project: str, message: str, as_json: bool) -> None:
    """The spec's author asks for changes: another round of work on the same project."""
    from orchestrator.runtime.projects import request_changes as ask_changes

    event, note = ask_changes(_workspace(), project, message)
    if note:
        click.echo(f"Note: {note}", err=True)
    if as_json:
        _json({**_event_json(event), "note": note})
        return
    click.echo(f"Changes requested on '{project}' (event {event.id}); 'orch run' starts "
               "the next round")


@cli.group()
def github() -> None:
    """Review through GitHub pull requests (review.host: github)."""


@github.command("sync")
@click.option("--event-path", type=click.Path(dir_okay=False), metavar="FILE",
              help="The webhook payload ($GITHUB_EVENT_PATH): only its pull request is read; "
              "one sent by a bot or by orch is ignored.")
@click.option("--repository", metavar="OWNER/NAME",
              help="Default: $GITHUB_REPOSITORY, else the remote's URL.")
@click.option("--push/--no-push", default=True, show_default=True,
              help="Push task branches to the remote before opening their pull requests.")
@click.option("--if-configured", is_flag=True,
              help="Do nothing (exit 0) unless review.host is github: for workflows.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def github_sync(event_path: str | None, repository: str | None, push: bool,
                if_configured: bool, as_json: bool) -> None:
    """Open draft pull requests for tasks waiting for review (QA's report as a comment),
    and record people's merges, approvals, change requests and closes. Token: GITHUB_TOKEN
    or GH_TOKEN; API: GITHUB_API_URL."""
    from dataclasses import asdict

    from orchestrator.runtime.github_review import sync_from_cli

    report = sync_from_cli(_workspace(), event_path, repository, push, if_configured)
    if as_json:
        _json(asdict(report))
    else:
        for line in report.lines() or ["nothing to do"]:
            click.echo(line)
    if report.failed:
        raise OrchError(f"{len(report.failed)} pull request(s) could not be opened; the "
                        "first: " + report.failed[0])


def main() -> None:
    """Entry point: every error of ours is one `Error:` line and a non-zero exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except OrchError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug of ours: still one line, the details on request
        if os.environ.get("ORCH_DEBUG"):
            raise
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        at = f" at {Path(where.tb_frame.f_code.co_filename).name}:{where.tb_lineno}" if where else ""
        click.echo(f"Error: internal error {type(exc).__name__}: {exc}{at}; rerun with "
                   "ORCH_DEBUG=1 for the traceback and report it", err=True)
        sys.exit(70)


__all__ = ["cli", "main", "UsageError"]
