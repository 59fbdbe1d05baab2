"""Many clones of one bare remote racing pushes: push is a compare-and-swap, never forced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.core import events as ev
from orchestrator.runtime.sync import publish
from orchestrator.runtime.workspace import Workspace

RACERS = 16
# 16 x 50 is the full race (ORCH_RACE_ROUNDS=50, minutes on 2 shared cores); the suite runs
# the same race shorter so it stays within its time.
ROUNDS = int(os.environ.get("ORCH_RACE_ROUNDS", "3"))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def seeded_remote(tmp_path: Path) -> Path:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(remote, "config", "core.logAllRefUpdates", "always")  # the test reads every update
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    ws, _ = Workspace.init(seed)
    ws.log.append("race", [ev.NewEvent(payload=ev.ProjectCreated(title="race"),
                                       actor="system")])
    git(seed, "push", "-q", "origin", "main")
    return remote


def clone(tmp_path: Path, remote: Path, name: str) -> Path:
    path = tmp_path / name
    git(tmp_path, "clone", "-q", str(remote), str(path))
    return path


def test_racing_one_event_pushes_keep_every_event_once_and_never_rewrite(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    clones = [clone(tmp_path, remote, f"w{i:02d}") for i in range(RACERS)]
    script = Path(__file__).parents[1] / "support" / "push_racer.py"
    procs = [subprocess.Popen([sys.executable, str(script), str(c), str(ROUNDS)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in clones]
    pushed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        pushed.extend(out.split())
    assert len(pushed) == RACERS * ROUNDS

    # Every update of the remote's branch was a fast-forward of the one before.
    updates = git(remote, "reflog", "--format=%H", "refs/heads/main").split()[::-1]
    assert len(updates) == 1 + RACERS * ROUNDS  # one push per event, nothing merged away
    for older, newer in zip(updates, updates[1:], strict=False):
        subprocess.run(["git", "merge-base", "--is-ancestor", older, newer], cwd=remote,
                       check=True)

    # Every event is there once, with a seq of its own.
    check = clone(tmp_path, remote, "check")
    events = Workspace.open(check).reader.events("race")
    ids = [e.id for e in events if e.type == "monitor.alert"]
    assert sorted(ids) == sorted(pushed)
    seqs = [e.seq for e in events]
    assert len(set(seqs)) == len(seqs)


def test_a_remote_that_refuses_for_another_reason_is_one_error_and_loses_nothing(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    ws = Workspace.open(clone(tmp_path, remote, "w"))
    [event] = ws.log.append("race", [ev.NewEvent(
        payload=ev.MonitorAlert(kind="other", message="refused"), actor="monitor")])
    from orchestrator.errors import GitError

    with pytest.raises(GitError) as err:
        publish(ws, "origin", sleep=lambda _: None)
    assert "did not take the push" in str(err.value) and "\n" not in str(err.value)
    assert event.id in {e.id for e in ws.reader.events("race")}  # still committed here
    hook.unlink()
    assert publish(ws, "origin").pushed


def test_a_lost_race_renumbers_above_what_came_in_and_drops_a_lost_claim(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    a = Workspace.open(clone(tmp_path, remote, "a"))
    b = Workspace.open(clone(tmp_path, remote, "b"))
    [created] = a.reader.events("race")

    def claim(ws: Workspace, worker: str) -> ev.Event:
        [e] = ws.log.append("race", [ev.NewEvent(
            payload=ev.ReactionClaimed(worker=worker, kind="review_spec"), actor="cto",
            causation_id=created.id)])
        return e

    won, lost = claim(a, "w-a"), claim(b, "w-b")
    [b_other] = b.log.append("race", [ev.NewEvent(
        payload=ev.MonitorAlert(kind="other", message="b's own"), actor="monitor")])
    assert publish(a, "origin").pushed
    report = publish(b, "origin", sleep=lambda _: None)
    assert report.pushed and report.rejections == 1
    assert [d.split()[1].rstrip(":") for d in report.dropped] == [lost.id]
    events = Workspace.open(clone(tmp_path, remote, "check")).reader.events("race")
    assert [(e.id, e.seq) for e in events] == [(created.id, 1), (won.id, 2), (b_other.id, 3)]


def test_a_crash_between_moving_onto_the_fetch_and_recommitting_loses_nothing(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    a = Workspace.open(clone(tmp_path, remote, "a"))
    b = Workspace.open(clone(tmp_path, remote, "b"))
    a.log.append("race", [ev.NewEvent(payload=ev.MonitorAlert(kind="other", message="a"),
                                      actor="monitor")])
    [mine] = b.log.append("race", [ev.NewEvent(
        payload=ev.MonitorAlert(kind="other", message="b"), actor="monitor")])
    assert publish(a, "origin").pushed
    # b is killed right after the branch moved onto what it fetched, before its new commit.
    head = b.repo.head()
    assert head is not None
    upstream = b.repo.fetch("origin")
    assert upstream is not None
    b.repo.move_onto(upstream, head)
    assert mine.id not in {e.id for e in Workspace.open(b.root).reader.events("race")}
    rerun = Workspace.open(b.root)
    assert publish(rerun, "origin").pushed
    events = Workspace.open(clone(tmp_path, remote, "check")).reader.events("race")
    assert [e.id for e in events].count(mine.id) == 1
    assert rerun.repo.saved_unpushed() is None


def test_worker_heartbeats_are_seen_by_peers_and_gone_when_a_worker_retires(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    a, b = (Workspace.open(clone(tmp_path, remote, name)) for name in ("a", "b"))
    branch_before = git(remote, "rev-parse", "main")
    assert a.repo.announce("origin", "w-aaaa") and a.repo.announce("origin", "w-aaaa")
    assert b.repo.announce("origin", "w-bbbb")
    assert git(remote, "rev-parse", "main") == branch_before  # the branch never moves
    b.repo.fetch("origin")
    assert b.repo.peers(0) == {"w-aaaa", "w-bbbb"}
    assert b.repo.peers(2**40) == set()  # a heartbeat older than the window is not counted
    # Renewed heartbeats are fast-forwards of the worker's own ref, never forced.
    log = git(remote, "log", "--format=%s", "refs/orch/workers/w-aaaa").splitlines()
    assert log == ["orch worker w-aaaa is dispatching"] * 2
    a.repo.retire("origin", "w-aaaa")
    b.repo.fetch("origin")
    assert b.repo.peers(0) == {"w-bbbb"}


def test_a_persons_unpushed_commit_is_replayed_as_theirs_never_folded_into_orchs(
        tmp_path: Path) -> None:
    remote = seeded_remote(tmp_path)
    a = Workspace.open(clone(tmp_path, remote, "a"))
    b = Workspace.open(clone(tmp_path, remote, "b"))
    [before] = a.log.append("race", [ev.NewEvent(
        payload=ev.MonitorAlert(kind="other", message="orch, before"), actor="monitor")])
    (a.root / "notes.md").write_text("the person's own words\n")
    git(a.root, "add", "notes.md")
    subprocess.run(["git", "commit", "-qm", "Notes from the standup"], cwd=a.root, check=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "Ada Person",
                        "GIT_AUTHOR_EMAIL": "ada@example.com"})
    [after] = Workspace.open(a.root).log.append("race", [ev.NewEvent(
        payload=ev.MonitorAlert(kind="other", message="orch, after"), actor="monitor")])
    b.log.append("race", [ev.NewEvent(payload=ev.MonitorAlert(kind="other", message="b"),
                                      actor="monitor")])
    assert publish(b, "origin").pushed
    report = publish(Workspace.open(a.root), "origin", sleep=lambda _: None)
    assert report.pushed and report.rejections == 1
    check = clone(tmp_path, remote, "check")
    log = git(check, "log", "--format=%an <%ae>|%s", "-4").splitlines()
    person = [line for line in log if line.startswith("Ada Person")]
    assert person == ["Ada Person <ada@example.com>|Notes from the standup"]
    # The person's commit holds the person's file and nothing of orch's; orch's commit the
    # reverse.
    mine = git(check, "log", "--author=Ada Person", "--format=%H", "-1").strip()
    assert git(check, "show", "--name-only", "--format=", mine).split() == ["notes.md"]
    orch_files = git(check, "show", "--name-only", "--format=", "HEAD").split()
    assert "notes.md" not in orch_files and orch_files
    events = Workspace.open(check).reader.events("race")
    assert {before.id, after.id} <= {e.id for e in events}
    assert (check / "notes.md").read_text() == "the person's own words\n"
