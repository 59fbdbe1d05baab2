"""A person steering projects through `orch`: which specs start, the spec that is built is the
spec committed, change rounds on an edited spec, cancel, and `orch emit` that cannot break
the log."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from orchestrator.core.specs import MAX_SPEC_BYTES
from tests.conftest import run_orch
from tests.support.sandbox import NO_CODE_CHECKS_YAML

SPEC = """\
# Plant watering

## Backend

- FR-1: The backend stores each plant with its name and how often it needs water.
- FR-2: The backend lists the plants that need water today.

## Web

- FR-3: The web page shows today's plants and lets a person mark one as watered.
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run_orch(path, "init")
    (path / ".orchestrator" / "config.yaml").write_text(
        "max_decomposition_depth: 0\nllm:\n  provider: offline\n" + NO_CODE_CHECKS_YAML)
    return path


def commit(repo: Path, files: dict[str, str], message: str = "specs") -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def views(repo: Path) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in json.loads(run_orch(repo, "status", "--json").stdout)["projects"]}


def log(repo: Path, *args: str) -> list[dict[str, Any]]:
    return list(json.loads(run_orch(repo, "log", *args, "--json").stdout))


def test_only_real_specs_start_projects(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, {"specs/README.md": "# How we write specs\n\n- FR-1: not a spec\n",
                  "specs/archive/old.md": "# Old\n\n- FR-1: done long ago\n",
                  "specs/draft.md": "---\norch: ignore\n---\n# Draft\n\n- FR-1: later\n",
                  "specs/plants.md": SPEC})
    dry = json.loads(run_orch(repo, "run", "--dry-run", "--json").stdout)["specs"]
    assert [(d["path"], d["starts"]) for d in dry] == [
        ("specs/README.md", False), ("specs/archive/old.md", False),
        ("specs/draft.md", False), ("specs/plants.md", True)]
    assert "prompt tokens" in dry[-1]["note"]
    assert views(repo) == {}  # a dry run writes nothing
    run_orch(repo, "run")
    assert {p: v["status"] for p, v in views(repo).items()} == {"plants": "completed"}


def test_a_spec_over_the_size_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    big = "# Big\n\n" + "- FR-1: " + "x" * MAX_SPEC_BYTES + "\n"
    (repo / "specs" / "big.md").write_text(big)
    proc = run_orch(repo, "submit", "specs/big.md", check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"limit of {MAX_SPEC_BYTES} bytes" in proc.stderr
    commit(repo, {}, "a big spec")
    out = run_orch(repo, "run").stdout
    assert f"over the limit of {MAX_SPEC_BYTES} bytes" in out
    assert views(repo) == {}


def test_the_built_spec_is_the_committed_one_and_a_change_round_reads_it_again(
    tmp_path: Path
) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, {"specs/plants.md": SPEC})
    first = git(repo, "rev-parse", "HEAD")
    # An edit that is never committed must never be built, in any round.
    (repo / "specs" / "plants.md").write_text(SPEC + "- FR-9: A secret uncommitted wish.\n")
    run_orch(repo, "run")
    assert views(repo)["plants"]["spec_ref"] == f"specs/plants.md@{first}"
    asked = run_orch(repo, "request-changes", "plants", "-m", "one more thing")
    assert "not committed" in asked.stderr
    run_orch(repo, "run")
    # Now the author commits a changed spec and asks again.
    changed = SPEC.replace("how often it needs water", "how often and how much water it needs")
    commit(repo, {"specs/plants.md": changed + "- FR-4: The web page shows a week ahead.\n"},
           "spec: a week ahead")
    spec_commit = git(repo, "rev-parse", "HEAD")
    run_orch(repo, "request-changes", "plants", "-m", "show the week ahead")
    run_orch(repo, "run")
    view = views(repo)["plants"]
    assert (view["status"], view["round"]) == ("completed", 3)
    assert view["spec_ref"] == f"specs/plants.md@{spec_commit}"
    reviews = log(repo, "plants", "--type", "spec.reviewed")
    assert [r["payload"]["round"] for r in reviews] == [1, 2, 3]
    last = reviews[-1]["payload"]
    assert (last["added"], last["changed"], last["removed"]) == (["FR-4"], ["FR-1"], [])
    planned = log(repo, "plants", "--type", "module.planned")[-2:]
    assert any("FR-4" in p["payload"]["requirements"] for p in planned)
    assert all("FR-4" in p["payload"]["scope"] for p in planned)  # the PMs are told
    round3 = [t for t in view["tasks"] if "-r3-" in t["id"]]
    assert any("FR-4" in t["requirements"] for t in round3)
    built = "".join(p.read_text(errors="replace") for p in (repo / "project").rglob("*")
                    if p.is_file())
    assert "secret uncommitted wish" not in built and "FR-9" not in built


def test_cancel_a_stuck_project_and_the_others_complete(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "r")
    # A spec that asks for nothing: its review finds no requirement, and it stays stuck.
    commit(repo, {"specs/stuck.md": "# Stuck\n", "specs/plants.md": SPEC})
    stuck = run_orch(repo, "run", check=False)
    assert stuck.returncode == 1 and "stuck did not complete" in stuck.stderr
    assert run_orch(repo, "cancel", "stuck", "-m", "made by mistake").returncode == 0
    proc = run_orch(repo, "run")
    assert proc.returncode == 0
    status = {p: v["status"] for p, v in views(repo).items()}
    assert status == {"stuck": "cancelled", "plants": "completed"}
    assert len(log(repo, "stuck")) >= 2  # its history is kept
    again = run_orch(repo, "cancel", "stuck", "-m", "twice", check=False)
    assert again.returncode == 2 and again.stderr.startswith("Error: ")


def test_emit_refuses_what_would_break_the_log_and_verify_reads_content(
    tmp_path: Path
) -> None:
    repo = new_repo(tmp_path / "r")
    commit(repo, {"specs/plants.md": SPEC})
    run_orch(repo, "run")
    run_orch(repo, "accept", "plants")
    alert = ["emit", "monitor.alert", "-P", "plants", "-p", "kind=other", "-p", "message=hi"]
    binary = tmp_path / "payload.bin"
    binary.write_bytes(bytes(range(256)))
    for extra in (["--causation", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], ["--actor", "boss"], [],
                  ["--payload-file", str(binary)]):
        proc = run_orch(repo, *alert, *extra, check=False)
        assert proc.returncode == 2, (extra, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1
    assert json.loads(run_orch(repo, "verify", "--json").stdout)["ok"]
    # Forced past the checks, the event is written, and verify names it forced, not corrupt.
    run_orch(repo, *alert, "--actor", "boss", "--force")
    verified = json.loads(run_orch(repo, "verify", "--json").stdout)
    assert verified["ok"] and verified["findings"] == []
    assert len(verified["forced"]) == 1 and "no role" in verified["forced"][0]["reason"]
    # Content, not timestamps: touching every event file, or copying the repository.
    for path in (repo / ".orchestrator" / "events").rglob("*.yaml"):
        path.touch()
    assert json.loads(run_orch(repo, "verify", "--json").stdout)["ok"]
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    assert json.loads(run_orch(copy, "verify", "--json").stdout)["ok"]
    edited = next((copy / ".orchestrator" / "events").rglob("*.yaml"))
    edited.write_text(edited.read_text() + "# edited\n")
    bad = run_orch(copy, "verify", "--json", check=False)
    assert bad.returncode == 1 and "changed in the working tree" in bad.stdout
