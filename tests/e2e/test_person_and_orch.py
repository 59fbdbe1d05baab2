"""A person keeps committing in the repository while `orch run` works in it, with and
without orch being killed: every commit of both lands, and nothing of either is lost."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import run_orch
from tests.support.sandbox import FAST_QA_YAML

SPEC = """\
# Allotment rota

A shared allotment needs a rota so that every plot gets watered.

## Requirements

- FR-1: A member can sign up for a watering slot on a given day.
- FR-2: The rota shows, for each day of the week, who waters which plot.
- FR-3: A member can swap a slot with another member, who must agree.
- FR-4: The coordinator gets a daily list of plots nobody watered.
- NFR-1: The rota page loads in under one second with 200 members.
"""

CONFIG = """\
parallelism: 4
llm:
  provider: offline
  offline:
    seed: 11
    qa_fail_rate: 0.3
""" + FAST_QA_YAML


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    run_orch(path, "init")
    (path / "specs" / "allotment.md").write_text(SPEC)
    (path / ".orchestrator" / "config.yaml").write_text(CONFIG)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "spec and config")
    return path


def person_commit(root: Path, n: int, deadline: float) -> bool:
    """Edit a file of the person's own and commit it: git add -A && git commit, tried again
    while git says another process holds the index lock."""
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / f"{n % 5}.md").write_text(f"note {n}\n")
    while time.monotonic() < deadline:
        proc = subprocess.run(f"git add -A && git commit -qm 'person {n}'", shell=True,
                              cwd=root, capture_output=True, text=True)
        if proc.returncode == 0:
            return True
        assert "index.lock" in proc.stderr, proc.stderr
        time.sleep(0.01)
    return False


def check_everything(repo: Path, person_commits: int) -> None:
    subjects = git(repo, "log", "--format=%s").stdout.splitlines()
    assert sum(s.startswith("person ") for s in subjects) == person_commits
    assert git(repo, "status", "--porcelain", "--untracked-files=all").stdout == ""
    assert git(repo, "fsck", "--strict", check=False).returncode == 0
    verify = json.loads(run_orch(repo, "verify", "--json").stdout)
    assert verify == {"ok": True, "findings": [], "forced": []}
    tracked = set(git(repo, "ls-files").stdout.split())
    on_disk = {p.relative_to(repo).as_posix() for p in (repo / ".orchestrator" / "events")
               .rglob("*.yaml")}
    assert on_disk and on_disk <= tracked
    view = json.loads(run_orch(repo, "status", "--json").stdout)["projects"][0]
    assert view["status"] == "completed"


def test_a_person_commits_throughout_a_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    orch = subprocess.Popen([sys.executable, "-m", "orchestrator", "run"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    made = 0
    while orch.poll() is None:
        assert person_commit(repo, made, time.monotonic() + 60)
        made += 1
    out, err = orch.communicate()
    assert orch.returncode == 0, out + err
    assert person_commit(repo, made, time.monotonic() + 10)
    check_everything(repo, made + 1)
    assert made >= 1
    other_libraries_read(repo)


def other_libraries_read(repo: Path) -> None:
    """GitPython, pygit2 and dulwich read the index orch leaves, and see no change."""
    import git as gitpython
    import pygit2
    from dulwich import porcelain

    tracked = set(git(repo, "ls-files").stdout.split())
    assert {e.path for e in pygit2.Repository(str(repo)).index} == tracked
    assert pygit2.Repository(str(repo)).status() == {}
    status = porcelain.status(str(repo))
    assert not any(status.staged.values()) and status.unstaged == []
    with gitpython.Repo(repo) as g:
        assert {path for path, _ in g.index.entries} == tracked
        assert not g.is_dirty(untracked_files=True)


def test_twenty_kills_then_a_persons_commit_then_a_rerun(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "k")
    rng = random.Random(7)
    made = 0
    stop = threading.Event()

    def person() -> None:
        nonlocal made
        while not stop.is_set():
            # A dead orch's lock blocks git (as a killed git commit's would) until the next
            # orch command repairs it; the person waits for that rather than deleting it.
            if person_commit(repo, made, time.monotonic() + 2):
                made += 1
            time.sleep(0.05)

    thread = threading.Thread(target=person)
    thread.start()
    try:
        for _ in range(20):
            proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "run"], cwd=repo,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL, env={**os.environ})
            time.sleep(rng.uniform(0.1, 1.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    finally:
        stop.set()
        thread.join()
    run_orch(repo, "status")  # any orch command repairs what the last kill left
    assert person_commit(repo, made, time.monotonic() + 10)
    made += 1
    run_orch(repo, "run")
    check_everything(repo, made)


def test_a_refusing_hook_fails_the_run_closed_and_git_verify_false_completes(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "h")
    head = git(repo, "rev-parse", "HEAD").stdout
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'policy: no generated code here' >&2\nexit 1\n")
    hook.chmod(0o755)
    proc = run_orch(repo, "run", check=False)
    assert proc.returncode != 0
    assert "pre-commit hook refused" in proc.stderr and "policy: no generated code" in proc.stderr
    assert git(repo, "rev-parse", "HEAD").stdout == head
    assert git(repo, "status", "--porcelain", "--untracked-files=all").stdout == ""
    (repo / ".orchestrator" / "config.yaml").write_text(CONFIG + "git:\n  verify: false\n")
    git(repo, "commit", "-qam", "skip hooks for orch", "--no-verify")
    run_orch(repo, "run")
    view = json.loads(run_orch(repo, "status", "--json").stdout)["projects"][0]
    assert view["status"] == "completed"


def test_every_commit_of_a_run_is_signed(tmp_path: Path) -> None:
    import shutil

    if shutil.which("ssh-keygen") is None:
        import pytest

        pytest.skip("ssh-keygen is not installed (openssh-client)")
    repo = make_repo(tmp_path / "s")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed"
    allowed.write_text(f"author@example.com {(tmp_path / 'key.pub').read_text()}")
    for name, value in (("gpg.format", "ssh"), ("user.signingkey", f"{key}.pub"),
                        ("commit.gpgsign", "true"), ("gpg.ssh.allowedSignersFile", str(allowed))):
        git(repo, "config", name, value)
    before = git(repo, "rev-parse", "HEAD").stdout.strip()
    run_orch(repo, "run")
    # Every commit the run made, on the main line and on the task branches merged into it.
    marks = git(repo, "log", f"{before}..HEAD", "--format=%G? %s").stdout.splitlines()
    assert marks and [m for m in marks if not m.startswith("G ")] == []
