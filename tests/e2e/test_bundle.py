"""Safe outputs: a plan's work travels as a bundle; `orch apply` checks all of it against
the current log before writing any of it, and names the rule it refuses on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_orch
from tests.e2e.test_person_and_orch import CONFIG, SPEC


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(origin repository with the spec, bundle of a whole run planned in a clone, project)."""
    base = tmp_path_factory.mktemp("bundle")
    origin = base / "origin"
    origin.mkdir()
    run_orch(origin, "init")
    (origin / "specs" / "allotment.md").write_text(SPEC)
    (origin / ".orchestrator" / "config.yaml").write_text(CONFIG)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "spec and config")
    plan = base / "plan"
    git(base, "clone", "-q", str(origin), str(plan))
    out = run_orch(plan, "dispatch", "--plan-only", "--out", str(base / "out")).stdout
    assert "bundle:" in out
    assert git(plan, "rev-parse", "HEAD") != git(origin, "rev-parse", "HEAD")  # committed here
    assert git(plan, "rev-parse", "origin/HEAD") == git(origin, "rev-parse", "HEAD")  # only
    project = json.loads(run_orch(plan, "status", "--json").stdout)["projects"][0]["id"]
    return origin, base / "out", project


def clone(origin: Path, where: Path) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(where))
    return where


def test_a_bundle_applied_gives_the_plans_log_once(planned: tuple[Path, Path, str],
                                                    tmp_path: Path) -> None:
    origin, bundle, project = planned
    target = clone(origin, tmp_path / "apply")
    done = json.loads(run_orch(target, "apply", str(bundle), "--json").stdout)
    assert done["events"] >= 40 and done["already_applied"] == 0
    view = json.loads(run_orch(target, "status", "--json").stdout)["projects"][0]
    assert view["id"] == project and view["status"] == "completed"
    assert json.loads(run_orch(target, "verify", "--json").stdout)["ok"]
    assert git(target, "status", "--porcelain", "--untracked-files=all") == ""
    # Each task's work was committed again on its own branch and merged: the main line is
    # event commits and merges only, each merge's second parent the commit task.merged
    # names, and no branch is left once merged.
    events = json.loads(run_orch(target, "log", project, "--json").stdout)
    merged = {e["payload"]["head"] for e in events if e["type"] == "task.merged"}
    lines = git(target, "log", "--first-parent", "--format=%P", "main").splitlines()
    assert merged and merged == {line.split()[1] for line in lines if len(line.split()) == 2}
    assert git(target, "for-each-ref", "refs/heads/orch/") == ""
    again = json.loads(run_orch(target, "apply", str(bundle), "--json").stdout)
    assert again["events"] == 0 and again["already_applied"] == done["events"]


def test_a_task_branch_file_outside_its_project_is_refused(planned: tuple[Path, Path, str],
                                                            tmp_path: Path) -> None:
    origin, bundle, _ = planned
    target = clone(origin, tmp_path / "t")
    hostile = _copy(bundle, tmp_path / "hostile")
    manifest = json.loads((hostile / "bundle.json").read_text())
    sha, paths = next(iter(manifest["heads"].items()))
    manifest["heads"][sha] = [*paths, ".github/workflows/own.yml"]
    (hostile / "bundle.json").write_text(json.dumps(manifest))
    target_file = hostile / "heads" / sha / ".github" / "workflows" / "own.yml"
    target_file.parent.mkdir(parents=True)
    target_file.write_text("on: push\n")
    _refused(target, hostile, "outside project/")


def _copy(bundle: Path, where: Path) -> Path:
    shutil.copytree(bundle, where)
    return where


def _add(bundle: Path, path: str, data: bytes) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    manifest["paths"].append(path)
    (bundle / "bundle.json").write_text(json.dumps(manifest))
    target = bundle / "tree" / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _refused(target: Path, bundle: Path, rule: str) -> None:
    head = git(target, "rev-parse", "HEAD")
    proc = run_orch(target, "apply", str(bundle), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("Error: ") and "\n" not in line and rule in line, line
    assert git(target, "rev-parse", "HEAD") == head
    assert git(target, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("path, data, rule", [
    (".github/workflows/evil.yml", b"on: push\n", "outside project/"),
    ("project/{p}/../../.github/x", b"x", "'..' part"),
    ("project/{p}/.git/config", b"x", "points into .git"),
    ("project/{p}/big.bin", b"0" * (20 * 1024 * 1024), "over the limit"),
    ("project/nobody/x.txt", b"x", "no event of the bundle's project 'nobody'"),
    (".orchestrator/config.yaml", b"llm: {}\n", "outside project/"),
])
def test_a_bundle_that_writes_where_it_may_not_is_refused_whole(
    planned: tuple[Path, Path, str], tmp_path: Path, path: str, data: bytes, rule: str
) -> None:
    origin, bundle, project = planned
    evil = _copy(bundle, tmp_path / "evil")
    _add(evil, path.format(p=project), data)
    _refused(clone(origin, tmp_path / "t"), evil, rule)


def test_ten_thousand_events_are_refused(planned: tuple[Path, Path, str],
                                         tmp_path: Path) -> None:
    origin, bundle, project = planned
    evil = _copy(bundle, tmp_path / "evil")
    manifest = json.loads((evil / "bundle.json").read_text())
    manifest["paths"] += [f".orchestrator/events/{project}/0009/{i:08d}-X.task.assigned.yaml"
                          for i in range(10_000)]
    (evil / "bundle.json").write_text(json.dumps(manifest))
    _refused(clone(origin, tmp_path / "t"), evil, "over the limit")


def test_an_event_whose_reaction_is_not_pending_is_refused(planned: tuple[Path, Path, str],
                                                           tmp_path: Path) -> None:
    origin, bundle, project = planned
    target = clone(origin, tmp_path / "t")
    run_orch(target, "apply", str(bundle))
    # The same reaction again under a new id: the log holds it already, nothing waits for it.
    manifest = json.loads((bundle / "bundle.json").read_text())
    reviewed = next(p for p in manifest["paths"] if p.endswith(".spec.reviewed.yaml"))
    old_id = reviewed.rsplit("/", 1)[1].split("-")[1].split(".")[0]
    new_id = "01" + old_id[2:][::-1]
    text = (bundle / "tree" / reviewed).read_text().replace(old_id, new_id)
    replay = tmp_path / "replay"
    (replay / "tree").mkdir(parents=True)
    head = git(target, "rev-parse", "HEAD").strip()  # planned from a log that has the review
    (replay / "bundle.json").write_text(json.dumps({**manifest, "base": head, "paths": [],
                                                    "heads": {}}))
    _add(replay, reviewed.replace(old_id, new_id), text.encode())
    _refused(target, replay, "is not a reaction the log was waiting for")


def test_hostile_text_in_files_stays_text(planned: tuple[Path, Path, str],
                                          tmp_path: Path) -> None:
    origin, bundle, project = planned
    hostile = b"${{ secrets.X }} $(id) `id` \"; curl http://127.0.0.1:9 ;\n"
    mine = _copy(bundle, tmp_path / "mine")
    _add(mine, f"project/{project}/notes.md", hostile)
    target = clone(origin, tmp_path / "t")
    run_orch(target, "apply", str(mine))
    assert (target / "project" / project / "notes.md").read_bytes() == hostile


def test_a_bundle_claiming_for_another_worker_is_refused(planned: tuple[Path, Path, str],
                                                          tmp_path: Path) -> None:
    origin, bundle, _ = planned
    forged = _copy(bundle, tmp_path / "forged")
    manifest = json.loads((forged / "bundle.json").read_text())
    (forged / "bundle.json").write_text(json.dumps({**manifest, "worker": "w-0123456789abcdef"}))
    _refused(clone(origin, tmp_path / "t"), forged, "forged claim")


def test_a_result_under_a_claim_that_is_not_the_bundles_is_refused(
    planned: tuple[Path, Path, str], tmp_path: Path
) -> None:
    origin, bundle, _ = planned
    forged = _copy(bundle, tmp_path / "forged")
    manifest = json.loads((forged / "bundle.json").read_text())
    result = next(p for p in manifest["paths"] if p.endswith(".spec.reviewed.yaml"))
    text = (forged / "tree" / result).read_text()
    claim = text.split('"kind": "claim", "ref": "', 1)[1].split('"', 1)[0]
    (forged / "tree" / result).write_text(text.replace(claim, "01JZZZZZZZZZZZZZZZZZZZZZZZ"))
    _refused(clone(origin, tmp_path / "t"), forged, "forged claim: its claim")


def test_work_done_elsewhere_since_a_plan_began_is_dropped_and_the_rest_applied(
    tmp_path: Path,
) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    run_orch(origin, "init")
    (origin / "specs" / "allotment.md").write_text(SPEC)
    (origin / "specs" / "rota.md").write_text(
        "# Plot rota\n\n- FR-1: A member sees which plot they water today.\n")
    (origin / ".orchestrator" / "config.yaml").write_text(CONFIG)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "two specs")
    look = clone(origin, tmp_path / "l")
    lanes = json.loads(run_orch(look, "lanes", "--json").stdout)
    assert [lane["lane"] for lane in lanes["include"]] == ["allotment", "rota"]
    assert "next sweep: 2 lane(s)" in run_orch(look, "lanes", "--next-sweep", "3").stdout
    capped = run_orch(look, "lanes", "--next-sweep", "48", check=False)
    assert capped.returncode == 1 and "max_sweeps_per_day" in capped.stdout
    # One plan job of one lane, one of everything, from the same commit: both do allotment.
    one, every = clone(origin, tmp_path / "one"), clone(origin, tmp_path / "every")
    run_orch(one, "dispatch", "--plan-only", "--project", "allotment", "--out", "b1")
    run_orch(every, "dispatch", "--plan-only", "--out", "b2")
    target = clone(origin, tmp_path / "apply")
    out = run_orch(target, "apply", str(one / "b1"), str(every / "b2")).stdout
    dropped = [line for line in out.splitlines() if line.startswith("Dropped")]
    assert dropped and all("since the plan): [allotment] " in line for line in dropped)
    assert "project.created" in dropped[0]  # the rest of its plan of allotment goes with it
    status = {p["id"]: p["status"] for p in
              json.loads(run_orch(target, "status", "--json").stdout)["projects"]}
    assert status == {"allotment": "completed", "rota": "completed"}
    assert json.loads(run_orch(target, "verify", "--json").stdout)["ok"]
    assert git(target, "status", "--porcelain", "--untracked-files=all") == ""

def test_a_plan_stopped_by_its_budget_loses_nothing_and_blocks_nobody(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    origin.mkdir()
    run_orch(origin, "init")
    (origin / "specs" / "allotment.md").write_text(SPEC)
    slow = CONFIG.replace("    seed: 11\n", "    seed: 11\n    latency_ms: 400\n")
    (origin / ".orchestrator" / "config.yaml").write_text(slow)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "spec")
    first = clone(origin, tmp_path / "first")
    done = json.loads(run_orch(first, "dispatch", "--plan-only", "--max-seconds", "1.5",
                               "--out", "b", "--json").stdout)
    assert done["stopped"] and done["in_flight"] >= 1  # claims of unfinished work left out
    run_orch(origin, "apply", str(first / "b"))
    assert json.loads(run_orch(origin, "status", "--json").stdout)["projects"][0][
        "status"] != "completed"
    second = clone(origin, tmp_path / "second")  # the next run: another worker, at once
    again = json.loads(run_orch(second, "dispatch", "--plan-only", "--out", "b",
                                "--json").stdout)
    assert again["worker"] != done["worker"] and not again["stopped"]
    run_orch(origin, "apply", str(second / "b"))
    assert json.loads(run_orch(origin, "status", "--json").stdout)["projects"][0][
        "status"] == "completed"
    assert json.loads(run_orch(origin, "verify", "--json").stdout)["ok"]
