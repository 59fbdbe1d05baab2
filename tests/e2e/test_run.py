"""`orch run` end to end: the whole flow, determinism, kill -9 at random moments, acceptance."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from tests.conftest import run_orch
from tests.support.sandbox import FAST_QA_YAML, NO_CODE_CHECKS_YAML, needs_sandbox

SPEC = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()
KNOBS = """\
max_qa_rework: 2
max_decomposition_depth: 1
parallelism: 8
llm:
  provider: offline
  offline:
    seed: 7
    qa_fail_rate: 0.35
    rework_fail_rate: 0.3
    blocker_rate: 0.2
    dependency_request_rate: 1.0
""" + FAST_QA_YAML


LEAN = "max_decomposition_depth: 0\n" + NO_CODE_CHECKS_YAML
"""For tests of rounds and deploys, not of QA: no subtasks, no code checks."""


def make_repo(path: Path, config: str = KNOBS) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run_orch(path, "init")
    (path / "specs" / "task-tracker.md").write_text(SPEC)
    (path / ".orchestrator" / "config.yaml").write_text(
        config if "qa:" in config else config + FAST_QA_YAML)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "spec and config"], cwd=path, check=True)
    return path


def run_with_failed_squads(repo: Path) -> subprocess.CompletedProcess[str]:
    """`orch run` of a config that makes squads fail: it completes, and exits 1 naming them."""
    proc = run_orch(repo, "run", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.fullmatch(r"Error: (task-tracker: squad [a-z-]+ failed; )+see 'orch status'\n",
                        proc.stderr), proc.stderr
    return proc


def status(repo: Path) -> dict[str, Any]:
    return json.loads(run_orch(repo, "status", "--json").stdout)["projects"][0]


def comparable(view: dict[str, Any]) -> dict[str, Any]:
    """A status view without what legitimately differs between runs: ids, times, commits."""
    text = json.dumps(view, sort_keys=True)
    text = re.sub(r'"[0-9A-HJKMNP-TV-Z]{26}"', '"ID"', text)
    text = re.sub(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', "TIME", text)
    text = re.sub(r"@[0-9a-f]{40}", "@COMMIT", text)
    view = dict(json.loads(text))
    # Parallel squads may write in either order: what they wrote must agree, not when.
    for key in ("alerts", "notices", "blocks", "dependencies"):
        view[key] = sorted(view[key], key=lambda item: json.dumps(item, sort_keys=True))
    return view


def artifacts(repo: Path) -> dict[str, bytes]:
    base = repo / "project"
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


@needs_sandbox  # QA's failures are its checks' failures: without a sandbox none run
def test_a_committed_spec_runs_to_completion_with_every_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "a")
    out = run_with_failed_squads(repo).stdout
    assert "Picked up a committed spec" in out
    view = status(repo)
    assert view["status"] == "completed"
    types = {e["type"] for e in json.loads(run_orch(repo, "log", "--json").stdout)}
    source = {"cto.engineer.request", "engineer.cto.response", "project.created",
              "module.planned", "task.assigned", "task.completed", "qa.failed", "qa.passed",
              "devops.deployed", "monitor.alert", "block.reported", "block.resolved",
              "pm.cto.dependency_request", "project.completed"}
    assert source <= types
    project = repo / "project" / "task-tracker"
    log = json.loads(run_orch(repo, "log", "--json").stdout)
    # Every check QA reports as passed passes again when a person reruns it from the
    # project's folder; nothing it did not run is reported as passed.
    reran = 0
    for e in (e for e in log if e["type"] == "qa.passed"):
        for check in e["payload"]["checks"]:
            assert check["status"] in ("passed", "not_run")
            if check["status"] == "passed":
                again = subprocess.run(check["command"], shell=True, cwd=project,
                                       capture_output=True, text=True, timeout=120)
                assert again.returncode == 0, check["command"] + again.stdout + again.stderr
                reran += 1
    assert reran >= 10
    # A failed test is named in qa.failed and reaches the Dev's rework as its findings.
    failed = [e for e in log if e["type"] == "qa.failed"]
    assert failed and all(any(re.search(r"\btest", f) for f in e["payload"]["findings"])
                          for e in failed)
    reworks = {e["payload"]["task_id"]: e["payload"]["findings"] for e in log
               if e["type"] == "task.assigned" and e["payload"]["reason"] == "rework"}
    assert all(reworks.get(e["payload"]["task_id"]) for e in failed)
    tasks = view["tasks"]
    assert any(t["status"] == "passed" and t["attempt"] > 1 for t in tasks)
    exhausted = {t["module"] for t in tasks if t["status"] == "rework_exhausted"}
    assert exhausted
    modules = {m["name"]: m["status"] for m in view["modules"]}
    assert all(modules[m] == "failed" for m in exhausted)
    deployed = {e["payload"]["module"] for e in json.loads(
        run_orch(repo, "log", "--json", "--type", "devops.requested").stdout)}
    assert not deployed & exhausted  # never DevOps for a squad with a rework-exhausted task
    assert any(n["kind"] == "block" for n in view["notices"])
    assert any(n["kind"] == "completed" for n in view["notices"])
    assert (repo / "project" / "task-tracker" / "docs" / "charter.md").is_file()
    assert json.loads(run_orch(repo, "verify", "--json").stdout)["ok"]
    log = subprocess.run(["git", "log", "--format=%B"], cwd=repo, capture_output=True,
                         text=True, check=True).stdout
    assert "Orch-Event:" in log and "Orch-Causation:" in log and "Orch-Actor:" in log


def test_two_runs_of_the_same_spec_and_seed_agree(tmp_path: Path) -> None:
    a, b = make_repo(tmp_path / "a"), make_repo(tmp_path / "b")
    run_with_failed_squads(a)
    run_with_failed_squads(b)
    assert comparable(status(a)) == comparable(status(b))
    assert artifacts(a) == artifacts(b)


def test_accept_and_request_changes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "a", config=LEAN + "llm:\n  provider: offline\n")
    run_orch(repo, "run")
    early = run_orch(repo, "accept", "nope", check=False)
    assert early.returncode != 0 and early.stderr.startswith("Error:")
    run_orch(repo, "request-changes", "task-tracker", "--message", "Add labels to tasks")
    assert status(repo)["status"] == "changes_requested"
    run_orch(repo, "run")
    view = status(repo)
    assert (view["status"], view["round"]) == ("completed", 2)
    run_orch(repo, "accept", "task-tracker")
    assert status(repo)["status"] == "accepted"
    assert "Nothing" not in run_orch(repo, "run").stderr


def test_kill_9_at_random_moments_then_rerun(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "k")
    rng = random.Random(20261122)
    env = {**os.environ}
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run"], cwd=repo,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                stdin=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_with_failed_squads(repo)
    assert status(repo)["status"] == "completed"
    verify = json.loads(run_orch(repo, "verify", "--json").stdout)
    assert verify == {"ok": True, "findings": [], "forced": []}
    events = json.loads(run_orch(repo, "log", "--json").stdout)
    keys = [(e["actor"], e["causation_id"], e["type"], json.dumps(e["payload"], sort_keys=True))
            for e in events if e["causation_id"]]
    assert len(keys) == len(set(keys))  # no reaction appears twice
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout == ""


def head_of(repo: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout.strip()


def _interrupted_run(repo: Path, signals: int, sig: int = signal.SIGINT) -> tuple[int, str]:
    """`orch run`, sent `sig` once its first claim is committed (orch is then in its loop
    with its signal handlers, and that claim's model call is in flight; the commit of the
    project itself comes before the handlers), and again after it said it is stopping
    (two signals close together may reach Python as one)."""
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and "reaction.claimed" not in (
            subprocess.run(["git", "log", "-1", "--format=%s"], cwd=repo, capture_output=True,
                           text=True).stdout):
        time.sleep(0.05)
    proc.send_signal(sig)
    out = ""
    for _ in range(signals - 1):
        while not out.endswith("Ctrl-C again drops them\n"):
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        proc.send_signal(sig)
    rest, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    return proc.returncode, out + rest


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    config = KNOBS.replace("dependency_request_rate: 1.0",
                           "dependency_request_rate: 1.0\n    latency_ms: 300")
    repo = make_repo(tmp_path / "t", config=config)
    code, out = _interrupted_run(repo, 1, signal.SIGTERM)
    assert code == 130 and "Stopped" in out
    assert json.loads(run_orch(repo, "verify", "--json").stdout)["ok"]
    assert subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                          text=True, check=True).stdout == ""


def test_a_first_ctrl_c_lets_the_calls_in_flight_finish_and_keeps_them(tmp_path: Path) -> None:
    config = LEAN + "llm:\n  provider: offline\n  offline:\n    latency_ms: 2500\n"
    repo = make_repo(tmp_path / "t", config=config)
    code, out = _interrupted_run(repo, signals=1)
    assert code == 130
    assert "Stopping: 1 call(s) in flight finish first; Ctrl-C again drops them" in out
    assert "Stopped: what was finished is committed" in out
    # The review that was being paid for when the person pressed Ctrl-C is in the log, and
    # no claim is left open: the next run does not call the model for it again.
    project = status(repo)
    assert project["claims"] == []
    assert json.loads(run_orch(repo, "log", "--json", "--type", "spec.reviewed").stdout)

    again = make_repo(tmp_path / "again", config=config)
    code, out = _interrupted_run(again, signals=2)
    assert code == 130 and "1 reaction(s) in flight were dropped" in out
    project = status(again)
    assert [c["actor"] for c in project["claims"]] == ["cto"]
    assert json.loads(run_orch(again, "verify", "--json").stdout)["ok"]


def test_the_configured_deploy_command_runs_and_its_failure_fails_the_squad(
    tmp_path: Path
) -> None:
    ok = make_repo(tmp_path / "ok", config=LEAN + "deploy:\n  command: 'test -n "
                   "\"$ORCH_ARTIFACTS\" && echo deployed $ORCH_SQUAD'\n")
    run_orch(ok, "run")
    deployed = json.loads(run_orch(ok, "log", "--json", "--type", "devops.deployed").stdout)
    smoke = [t for e in deployed for t in e["payload"]["smoke_tests"]
             if t["name"] == "deploy command"]
    assert smoke and all(t["passed"] and "deployed" in t["detail"] for t in smoke)
    bad = make_repo(tmp_path / "bad", config=LEAN + "deploy:\n  command: 'echo nope >&2; "
                    "exit 3'\n")
    run_with_failed_squads(bad)
    view = status(bad)
    assert view["status"] == "completed"
    assert {m["status"] for m in view["modules"]} == {"failed"}
    assert any(a["kind"] == "deploy_failed" for a in view["alerts"])
