"""orch's commits beside a person's git: concurrent commands, signing, hooks, eol filters,
crashes at every step, and other git libraries reading what orch left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.git import GitRepo
from orchestrator.adapters.git_commit import HookRefusedError
from orchestrator.errors import GitError

REPO_ROOT = Path(__file__).resolve().parents[2]


def git(root: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


def assert_healthy(root: Path) -> None:
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=root, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert git(root, "status", "--porcelain", "--untracked-files=all") == ""
    assert not (root / ".git" / "index.lock").exists()


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[GitRepo]:
    r = GitRepo.init(tmp_path / "repo")
    r.commit_files({"README.md": b"# repo\n"}, "base")
    yield r
    r.close()


def person_loop(root: Path, stop: threading.Event, command: str, done: list[int]) -> None:
    """A person who keeps working: edits a file of their own, then runs `command`.
    git refuses while orch holds the index lock ('index.lock exists'); they try again."""
    n = 0
    while not stop.is_set():
        n += 1
        (root / "mine").mkdir(exist_ok=True)
        (root / "mine" / f"{n % 7}.txt").write_text(f"edit {n}\n")
        steps = {
            "add-commit": ["git add -A", f"git commit -qm 'person {n}'"],
            "commit-a": ["git add mine", f"git commit -qam 'person {n}'"],
            "stash": ["git stash -q", "git stash pop -q"],
            "checkout": ["git checkout -- ."],
        }[command]
        for step in steps:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                proc = subprocess.run(step, shell=True, cwd=root, capture_output=True, text=True)
                if proc.returncode == 0 or "nothing to commit" in proc.stdout:
                    break  # (an attempt that git reported as failed may have landed)
                # git refuses with 'index.lock exists' (git stash says nothing and exits 1).
                assert "lock" in proc.stderr or not proc.stderr.strip(), proc.stderr
                last = proc.stdout + proc.stderr
                time.sleep(0.002)
            else:
                raise AssertionError(f"'{step}' never got through: {last}")
        done.append(n)


@pytest.mark.parametrize("command", ["add-commit", "commit-a", "stash", "checkout"])
def test_a_person_committing_throughout_never_drops_orchs_files(
    repo: GitRepo, command: str
) -> None:
    (repo.root / "mine").mkdir()
    for n in range(7):
        (repo.root / "mine" / f"{n}.txt").write_text("tracked\n")
    git(repo.root, "add", "mine")
    git(repo.root, "commit", "-qm", "the person's own files")
    stop = threading.Event()
    done: list[int] = []
    person = threading.Thread(target=person_loop, args=(repo.root, stop, command, done))
    person.start()
    ours = {}
    try:
        for i in range(60):
            batch = {f".orchestrator/events/p/0000/{i:08d}.yaml": b"seq: %d\n" % i,
                     f"project/p/a/{i % 5}.py": b"v = %d\n" % i}
            repo.commit_files(batch, f"orch {i}")
            ours.update(batch)
            time.sleep(0.01)  # a run's pass: the agents' work between two commits
    finally:
        stop.set()
        person.join()
    assert done, "the person never got a command through"
    git(repo.root, "add", "-A", "mine")
    git(repo.root, "commit", "-qm", "person's last", check=False)
    # git commit reads the index before it locks it and HEAD after: a person's commit that
    # overlaps one of orch's can record the index as it was before orch's, on top of it.
    # orch's next commit restores what such a commit dropped (the work tree still has it).
    repo.commit_files({".orchestrator/events/p/0000/99999999.yaml": b"last\n"}, "orch's next")
    for path, data in ours.items():
        assert git(repo.root, "show", f"HEAD:{path}").encode() == data, path
        if command != "stash":
            assert (repo.root / path).read_bytes() == data
    if command in ("add-commit", "commit-a"):
        subjects = git(repo.root, "log", "--format=%s").splitlines()
        assert 0 < sum(s.startswith("person ") for s in subjects) <= len(done) + 1
        last = max(done)
        assert git(repo.root, "show", f"HEAD:mine/{last % 7}.txt") == f"edit {last}\n"
    if command == "stash":
        # git stash reads the index and the work tree at different times without holding
        # the index lock throughout, and exits 1 after saving when the lock is taken between
        # its steps; a pop can then bring back an older copy of one of orch's files into the
        # work tree. The commits keep everything (checked above); put the work tree back.
        git(repo.root, "checkout", "--", ".")
    assert_healthy(repo.root)


def test_every_orch_commit_is_signed_when_the_repository_asks(repo: GitRepo,
                                                             tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (openssh-client)")
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed"
    allowed.write_text(f"author@example.com {(tmp_path / 'key.pub').read_text()}")
    for key_name, value in (("gpg.format", "ssh"), ("user.signingkey", f"{key}.pub"),
                            ("commit.gpgsign", "true"),
                            ("gpg.ssh.allowedSignersFile", str(allowed))):
        repo.set_config(key_name, value)
    for i in range(3):
        repo.commit_files({f"e/{i}.yaml": b"x"}, f"signed {i}")
    assert git(repo.root, "log", "-3", "--format=%G?").split() == ["G", "G", "G"]
    repo.set_config("user.signingkey", str(tmp_path / "missing.pub"))
    head = repo.head()
    with pytest.raises(GitError, match="sign"):
        repo.commit_files({"e/bad.yaml": b"x"}, "cannot sign")
    assert repo.head() == head
    assert_healthy(repo.root)


def _hook(root: Path, name: str, body: str) -> None:
    hook = root / ".git" / "hooks" / name
    hook.write_text("#!/bin/sh\n" + body)
    hook.chmod(0o755)


def test_a_refusing_hook_fails_closed_and_writes_nothing(repo: GitRepo) -> None:
    _hook(repo.root, "pre-commit", "echo 'no commits on Fridays' >&2\nexit 1\n")
    head = repo.head()
    with pytest.raises(HookRefusedError, match="pre-commit hook refused.*no commits on Fridays"):
        repo.commit_files({"project/p/new.py": b"x = 1\n", "README.md": b"changed\n"}, "nope")
    assert repo.head() == head
    assert (repo.root / "README.md").read_text() == "# repo\n"
    assert_healthy(repo.root)
    repo.verify = False
    repo.commit_files({"project/p/new.py": b"x = 1\n"}, "skips hooks, as --no-verify does")
    assert_healthy(repo.root)


def test_hooks_see_what_is_committed_and_may_edit_the_message(repo: GitRepo) -> None:
    _hook(repo.root, "pre-commit", "git diff --cached --name-only > .git/seen\n")
    _hook(repo.root, "commit-msg", 'echo "Signed-off-by: hook" >> "$1"\n')
    (repo.root / "staged.txt").write_text("the person's\n")
    git(repo.root, "add", "staged.txt")
    repo.commit_files({"project/p/a.py": b"a\n"}, "ours")
    assert (repo.root / ".git" / "seen").read_text().split() == ["project/p/a.py"]
    assert "Signed-off-by: hook" in git(repo.root, "log", "-1", "--format=%B")
    assert git(repo.root, "diff", "--cached", "--name-only").split() == ["staged.txt"]


def test_autocrlf_work_tree_matches_head_across_rounds(repo: GitRepo) -> None:
    repo.set_config("core.autocrlf", "true")
    repo.commit_files({"project/p/a.txt": b"one\ntwo\n", "project/p/b.txt": b"b\n"}, "round 1")
    repo.commit_files({"project/p/a.txt": b"one\ntwo\nthree\n"}, "round 2")
    assert (repo.root / "project/p/a.txt").read_bytes() == b"one\r\ntwo\r\nthree\r\n"
    assert git(repo.root, "show", "HEAD:project/p/a.txt") == "one\ntwo\nthree\n"
    repo.commit_files({"project/p/c.txt": b"crlf\r\nin\r\n"}, "clean filter applies")
    assert git(repo.root, "show", "HEAD:project/p/c.txt") == "crlf\nin\n"
    assert_healthy(repo.root)
    git(repo.root, "commit", "-qam", "a person's commit -a changes nothing", check=False)
    assert git(repo.root, "show", "HEAD:project/p/a.txt") == "one\ntwo\nthree\n"


def test_other_git_libraries_read_what_orch_leaves(repo: GitRepo) -> None:
    pygit2 = pytest.importorskip("pygit2")
    dulwich_repo = pytest.importorskip("dulwich.repo")
    porcelain = pytest.importorskip("dulwich.porcelain")
    import git as gitpython

    for i in range(5):
        repo.commit_files({f".orchestrator/events/p/0000/{i}.yaml": b"x", "project/p/f": b"%d" % i},
                          f"c{i}")
    paths = {".orchestrator/events/p/0000/4.yaml", "project/p/f", "README.md"}
    assert paths <= {e.path for e in pygit2.Repository(str(repo.root)).index}
    assert pygit2.Repository(str(repo.root)).status() == {}
    assert paths <= {p.decode() for p in dulwich_repo.Repo(str(repo.root)).open_index()}
    status = porcelain.status(str(repo.root))
    assert not any(status.staged.values()) and status.unstaged == []
    g = gitpython.Repo(repo.root)
    assert paths <= {path for path, _ in g.index.entries}
    assert not g.is_dirty(untracked_files=True)
    g.close()


CRASH = """
import os, sys
from pathlib import Path
from orchestrator.adapters import git_commit
from orchestrator.adapters.git import GitRepo
step = sys.argv[2]
if step == "index-in-place":
    real_replace = os.replace
    def replace(src, dst):
        if str(src).endswith("index.next"):
            os.kill(os.getpid(), 9)
        real_replace(src, dst)
    git_commit.os.replace = replace
elif step == "orphan-update-ref":
    def crash(self, ref, old, new, reflog):
        # orch dies while the update-ref it started is still running (its hook sleeps)
        self.runner.popen(["update-ref", "-m", reflog, ref, new, old or git_commit.ZERO])
        os.kill(os.getpid(), 9)
    git_commit.IndexCommitter._move_ref = crash
else:
    original = getattr(git_commit.IndexCommitter, step)
    def crash(self, *args, **kwargs):
        if step == "_move_ref":
            original(self, *args, **kwargs)
        os.kill(os.getpid(), 9)
    setattr(git_commit.IndexCommitter, step, crash)
repo = GitRepo.open(Path(sys.argv[1]))
repo.commit_files({"events/crash.yaml": b"c\\n", "README.md": b"rewritten\\n"}, "crash")
"""


@pytest.mark.parametrize(
    "step", ["_write_worktree", "_hook", "_commit_tree", "_move_ref", "index-in-place"]
)
def test_killed_at_any_step_the_next_command_leaves_git_as_it_was(
    repo: GitRepo, step: str
) -> None:
    _hook(repo.root, "pre-commit", "exit 0\n")
    head = repo.head()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", CRASH, str(repo.root), step], env=env)
    assert proc.returncode == -signal.SIGKILL
    assert (repo.root / ".git" / "index.lock").exists()  # a stale lock, as git would leave
    # The person's git refuses while the dead lock is there; any orch command repairs it.
    with GitRepo.open(repo.root) as again:
        again.recover()
    landed = repo.head() != head
    assert landed == (step in ("_move_ref", "index-in-place"))
    readme = "rewritten\n" if landed else "# repo\n"
    assert (repo.root / "README.md").read_text() == readme
    assert (repo.root / "events/crash.yaml").exists() == landed
    assert_healthy(repo.root)
    (repo.root / "mine.txt").write_text("a person's commit after the crash\n")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-qm", "person")
    tracked = git(repo.root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert ("events/crash.yaml" in tracked) == landed and "mine.txt" in tracked


def test_killed_while_its_update_ref_still_runs_the_commit_lands_whole(repo: GitRepo) -> None:
    """Recovery waits for the git commands a dead orch left running: undoing the work tree
    while its update-ref is still to land would leave a commit whose files are not there."""
    _hook(repo.root, "reference-transaction", "sleep 1\n")
    head = repo.head()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, "-c", CRASH, str(repo.root), "orphan-update-ref"],
                          env=env)
    assert proc.returncode == -signal.SIGKILL
    with GitRepo.open(repo.root) as again:
        again.recover()
    assert repo.head() != head
    assert (repo.root / "README.md").read_text() == "rewritten\n"
    assert (repo.root / "events/crash.yaml").exists()
    assert_healthy(repo.root)


def test_a_live_lock_is_waited_for_and_a_foreign_one_never_removed(repo: GitRepo) -> None:
    lock = repo.root / ".git" / "index.lock"
    lock.write_bytes(b"")  # a person's git, busy (or crashed): not orch's to remove
    repo._committer.lock.timeout_s = 0.3
    with pytest.raises(GitError, match="held by another git process"):
        repo.commit_files({"a": b"1"}, "waits, then gives up")
    assert lock.exists()
    repo.recover()
    assert lock.exists()
    threading.Timer(0.1, lock.unlink).start()
    repo.commit_files({"a": b"1"}, "the lock was let go meanwhile")
    assert_healthy(repo.root)


def test_refused_up_front_what_cannot_work(repo: GitRepo) -> None:
    repo.preflight()
    git(repo.root, "checkout", "-q", "--detach")
    with pytest.raises(GitError, match="detached"):
        repo.preflight()
    git(repo.root, "checkout", "-q", "main")
    (repo.root / ".git" / "MERGE_HEAD").write_text(repo.head() or "")
    with pytest.raises(GitError, match="a merge is in progress"):
        repo.preflight()


def test_an_edit_in_the_second_of_the_persons_last_add_is_still_seen(repo: GitRepo) -> None:
    """git tells an edit from a clean file by size and mtime, whole seconds where it is built
    without nanosecond stamps: an edit of the same size within the second of the last `git
    add` is caught only because the index is as new as the entry ("racily clean"). orch's
    commit copies the index; a copy dated now hid such an edit from every later `git add`."""
    root = repo.root
    note = root / "notes.md"
    note.write_text("note 1\n")
    then = time.time_ns() - 10 * 10**9  # the person's add, ten seconds ago
    os.utime(note, ns=(then, then))
    git(root, "add", "notes.md")
    git(root, "commit", "-qm", "person: a note")
    note.write_text("note 2\n")  # same size, in the same second as that add
    os.utime(note, ns=(then, then))
    os.utime(root / ".git" / "index", ns=(then, then))
    repo.commit_files({"project/demo/a.txt": b"a\n"}, "orch: a file of its own\n")
    git(root, "add", "-A")
    assert git(root, "diff", "--cached", "--name-only").split() == ["notes.md"]
