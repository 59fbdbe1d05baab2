"""`orch watch`: a spec committed while it watches becomes a project that runs to completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_orch
from tests.support.sandbox import NO_CODE_CHECKS_YAML

# What these tests are about is watch waking up, not the team: a two-requirement spec with
# no code checks keeps each run short.
SMALL_SPEC = """\
# Bell ringer

## Functional requirements

- FR-1: The service lets a warden schedule a bell with its hour.
- FR-2: The service lists the bells of a day in order.
"""
QUICK = "max_decomposition_depth: 0\n" + NO_CODE_CHECKS_YAML


FAULTS = {**os.environ, "PYTHONFAULTHANDLER": "1"}
"""A watch that does not stop on SIGINT is sent SIGABRT: faulthandler prints where every
thread of it was, and that is in the failure."""


def _watch(root: Path) -> subprocess.Popen[str]:
    """`orch watch` in root, polling only once a minute: what wakes it is the change."""
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", "--poll", "60"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, env=FAULTS)


def _interrupt(proc: subprocess.Popen[str], timeout_s: float) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"watch did not stop {timeout_s:.0f} s after SIGINT; its "
                             f"threads then:\n{err[-6000:]}\n{out[-2000:]}") from None


def _quick_repo(root: Path) -> None:
    run_orch(root, "init")
    (root / ".orchestrator" / "config.yaml").write_text(QUICK)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "quick config"], cwd=root, check=True)


def test_watch_picks_up_a_spec_committed_while_it_runs(tmp_path: Path) -> None:
    _quick_repo(tmp_path)
    proc = _watch(tmp_path)
    try:
        time.sleep(1.5)
        (tmp_path / "specs" / "tracker.md").write_text(SMALL_SPEC)
        subprocess.run(["git", "add", "specs"], cwd=tmp_path, check=True)
        subprocess.run(["git", "commit", "-qm", "a spec"], cwd=tmp_path, check=True)
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline and status != "completed":
            time.sleep(1)
            views = json.loads(run_orch(tmp_path, "status", "--json").stdout)["projects"]
            status = views[0]["status"] if views else ""
        assert status == "completed"
    finally:
        out, err = _interrupt(proc, 30)
    assert "Traceback" not in err, err
    assert "Stopped watching" in out


def test_watch_wakes_on_a_commit_that_writes_nothing_it_watches(tmp_path: Path) -> None:
    """The race behind a flaky run: writing a spec wakes a pass that finds it not yet
    committed, and the commit itself writes only under .git/. Here the spec is committed
    with plumbing and never written to the tree, so only a moved HEAD can wake watch (the
    poll is a minute away): the project must still start and complete."""
    _quick_repo(tmp_path)
    proc = _watch(tmp_path)
    try:
        time.sleep(1.5)
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=tmp_path,
                              input=SMALL_SPEC, capture_output=True, text=True,
                              check=True).stdout.strip()
        subprocess.run(["git", "update-index", "--add", "--cacheinfo",
                        f"100644,{blob},specs/tracker.md"], cwd=tmp_path, check=True)
        subprocess.run(["git", "commit", "-qm", "a spec, by plumbing"], cwd=tmp_path,
                       check=True)
        deadline = time.monotonic() + 45
        status = ""
        while time.monotonic() < deadline and status != "completed":
            time.sleep(1)
            views = json.loads(run_orch(tmp_path, "status", "--json").stdout)["projects"]
            status = views[0]["status"] if views else ""
        assert status == "completed"
    finally:
        out, err = _interrupt(proc, 30)
    assert "Traceback" not in err, err


def test_watch_in_a_clone_sweeps_when_someone_pushes_a_spec_to_the_remote(
        tmp_path: Path) -> None:
    def git(cwd: Path, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                              text=True).stdout

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    person = tmp_path / "person"
    git(tmp_path, "clone", "-q", str(remote), str(person))
    run_orch(person, "init")
    (person / ".orchestrator" / "config.yaml").write_text(QUICK)
    git(person, "add", "-A")
    git(person, "commit", "-qm", "orch init")
    git(person, "push", "-q", "origin", "main")
    watcher = tmp_path / "watcher"
    git(tmp_path, "clone", "-q", str(remote), str(watcher))
    proc = _watch(watcher)
    try:
        time.sleep(1.5)
        # The spec reaches the watcher only through the remote: nothing in its folders moves.
        (person / "specs" / "bells.md").write_text(SMALL_SPEC)
        git(person, "add", "specs")
        git(person, "commit", "-qm", "a spec")
        git(person, "push", "-q", "origin", "main")
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline and status != "completed":
            time.sleep(2)
            git(person, "fetch", "-q", "origin")
            views = json.loads(run_orch(person, "status", "--json", "--at",
                                        "origin/main").stdout)["projects"]
            status = views[0]["status"] if views else ""
        assert status == "completed"  # swept by the watcher and pushed to the remote
    finally:
        out, err = _interrupt(proc, 60)
    assert "Traceback" not in err, err
    assert "Stopped watching" in out
