"""The git adapter against real git in temp folders: commits, CAS, work tree/index sync, reads."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.git import GitRepo
from orchestrator.errors import ConcurrentUpdateError, GitError, NotARepositoryError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated git: empty global config, temp HOME, fixed identity."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test Bot")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "bot@example.com")
        monkeypatch.delenv(f"GIT_{role}_DATE", raising=False)
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def repo(git_env: Path) -> Iterator[GitRepo]:
    r = GitRepo.init(git_env / "repo")
    yield r
    r.close()


def git(root: Path, *args: str, input: str | None = None) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=root, input=input, capture_output=True, text=True, check=True
    )
    return proc.stdout


def status(root: Path) -> str:
    return git(root, "status", "--porcelain", "--untracked-files=all")


def assert_healthy(root: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--strict"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert status(root) == ""


# -- committing ------------------------------------------------------------------------------


def test_init_is_idempotent_and_changes_no_setting(git_env: Path) -> None:
    first = GitRepo.init(git_env / "r")
    assert first.branch() == "main" and first.head() is None
    first.close()
    config = (git_env / "r" / ".git" / "config").read_text()
    again = GitRepo.init(git_env / "r")
    again.commit_files({"a": b"1"}, "one")
    assert (git_env / "r" / ".git" / "config").read_text() == config
    assert not list((git_env / "r" / ".git").glob("sharedindex.*"))
    (again.root / "sub" / "deeper").mkdir(parents=True)
    opened = GitRepo.open(again.root / "sub" / "deeper")
    assert opened.root == again.root
    opened.close()
    again.close()


def test_open_outside_a_repository(git_env: Path) -> None:
    (git_env / "plain").mkdir()
    with pytest.raises(NotARepositoryError, match="orch init"):
        GitRepo.open(git_env / "plain")


def test_commits_on_unborn_branch_then_more(repo: GitRepo) -> None:
    message = "Add event 1\n\nOrch-Event: evt-1\nOrch-Project: demo"
    c1 = repo.commit_files({"events/0001.yaml": b"seq: 1\n", "README.md": b"# hi\n"}, message)
    c2 = repo.commit_files({"events/0002.yaml": b"seq: 2\n"}, "Add event 2\n")
    assert repo.head() == c2
    assert git(repo.root, "log", "--format=%H").split() == [c2, c1]
    assert git(repo.root, "rev-parse", f"{c2}^").strip() == c1
    assert git(repo.root, "cat-file", "commit", c1).endswith("\n\n" + message + "\n")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>|%cn").strip() == (
        "Test Bot <bot@example.com>|Test Bot"
    )
    assert git(repo.root, "show", f"{c1}:events/0001.yaml") == "seq: 1\n"
    assert "commit (initial): Add event 1" in git(repo.root, "reflog", "show", "main")
    assert len(git(repo.root, "reflog", "show", "HEAD").splitlines()) == 2
    assert (repo.root / "events" / "0002.yaml").read_bytes() == b"seq: 2\n"
    assert_healthy(repo.root)


def test_identity_falls_back_to_config_then_orch(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("NAME", "EMAIL"):
        for role in ("AUTHOR", "COMMITTER"):
            monkeypatch.delenv(f"GIT_{role}_{var}")
    monkeypatch.delenv("EMAIL", raising=False)
    repo.commit_files({"a": b"1"}, "anonymous")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>").strip() == "orch <orch@localhost>"
    repo.set_config("user.name", "Conf Igured")
    repo.set_config("user.email", "conf@example.com")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1700000000 +0100")
    repo.commit_files({"b": b"2"}, "configured")
    assert git(repo.root, "log", "-1", "--format=%an <%ae> %ad", "--date=raw").strip() == (
        "Conf Igured <conf@example.com> 1700000000 +0100"
    )


def test_nested_replace_many_and_unicode_paths(repo: GitRepo) -> None:
    repo.commit_files({"a/b/c/d.txt": b"one"}, "one")
    repo.commit_files({"a/b/c/d.txt": b"two", "a/b/e.txt": b"e"}, "two")
    many = {f"bulk/{i // 100:02d}/{i:05d}.yaml": f"n: {i}\n".encode() for i in range(300)}
    weird = {"dir with space/file ü.yaml": b"u", "日本/ファイル.txt": b"j", "x/-dash": b"d"}
    repo.commit_files({**many, **weird}, "many")
    assert (repo.root / "a/b/c/d.txt").read_bytes() == b"two"
    assert git(repo.root, "show", "HEAD:a/b/c/d.txt") == "two"
    listed = git(repo.root, "ls-files", "-z").split("\0")
    assert set(many) | set(weird) <= set(listed)
    for path, data in weird.items():
        assert (repo.root / path).read_bytes() == data
    assert_healthy(repo.root)


def test_delete_with_none(repo: GitRepo) -> None:
    repo.commit_files({"gen/a.txt": b"a", "gen/b.txt": b"b"}, "add")
    repo.commit_files({"gen/a.txt": None}, "drop a")
    assert not (repo.root / "gen/a.txt").exists()
    assert git(repo.root, "ls-files").split() == ["gen/b.txt"]
    repo.commit_files({"gen/b.txt": None}, "drop b")
    assert not (repo.root / "gen").exists()
    assert_healthy(repo.root)


def test_empty_commit_carries_only_its_message(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a": b"1"}, "one")
    c2 = repo.commit_files({}, "marker\n\nOrch-Event: tick")
    assert git(repo.root, "rev-parse", f"{c2}^{{tree}}") == git(
        repo.root, "rev-parse", f"{c1}^{{tree}}"
    )
    assert_healthy(repo.root)


@pytest.mark.parametrize(
    "path", ["../x", "/abs", ".git/config", "a/../../b", "", "a//b", "./a", "a/.GIT/x", "a\\b"]
)
def test_hostile_paths_are_rejected(repo: GitRepo, path: str) -> None:
    repo.commit_files({"ok.txt": b"ok"}, "base")
    head = repo.head()
    with pytest.raises((GitError, ValueError)):
        repo.commit_files({"fine.txt": b"x", path: b"evil"}, "evil")
    assert repo.head() == head
    assert not (repo.root / "fine.txt").exists()
    assert not (repo.root.parent / "x").exists() and not (repo.root.parent / "b").exists()
    assert_healthy(repo.root)


def test_file_folder_clashes_are_rejected(repo: GitRepo) -> None:
    repo.commit_files({"a": b"file", "d/f": b"x"}, "base")
    head = repo.head()
    for files in ({"a/b": b"x"}, {"d": b"x"}, {"n": b"x", "n/m": b"y"}, {"d": None}):
        with pytest.raises(GitError):
            repo.commit_files(files, "clash")
    assert repo.head() == head
    assert_healthy(repo.root)


def test_detached_head_is_refused(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a": b"1"}, "one")
    git(repo.root, "checkout", "-q", "--detach", c1)
    with pytest.raises(GitError, match="detached"):
        repo.commit_files({"b": b"2"}, "two")


# -- compare-and-swap ------------------------------------------------------------------------


def test_stale_expected_head_raises_and_leaves_branch(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a": b"1"}, "one")
    other = GitRepo.open(repo.root)
    c2 = other.commit_files({"b": b"2"}, "two", expected_head=c1)
    with pytest.raises(ConcurrentUpdateError):
        repo.commit_files({"c": b"3"}, "three", expected_head=c1)
    assert repo.head() == c2
    git(repo.root, "commit", "-q", "--allow-empty", "-m", "user")
    c3 = git(repo.root, "rev-parse", "HEAD").strip()
    with pytest.raises(ConcurrentUpdateError):
        repo.commit_files({"c": b"3"}, "three", expected_head=c2)
    assert repo.head() == c3 and not (repo.root / "c").exists()
    fresh = GitRepo.open(repo.root)
    c4 = fresh.commit_files({"c": b"3"}, "three", expected_head=c3)
    assert git(repo.root, "rev-parse", f"{c4}^").strip() == c3
    c5 = repo.commit_files({"d": b"4"}, "four")  # no expectation: builds on the current head
    assert git(repo.root, "rev-parse", f"{c5}^").strip() == c4
    with pytest.raises(ConcurrentUpdateError):
        repo.commit_files({"e": b"5"}, "unborn expected", expected_head=None)
    other.close()
    fresh.close()
    assert_healthy(repo.root)


def test_a_ref_lock_held_by_another_is_a_concurrent_update(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a": b"1"}, "one")
    (repo.git_dir / "refs/heads/main.lock").write_text("")
    with pytest.raises(ConcurrentUpdateError, match="moved or is locked"):
        repo.commit_files({"b": b"x"}, "blocked")
    (repo.git_dir / "refs/heads/main.lock").unlink()
    assert repo.head() == c1
    assert_healthy(repo.root)
    assert not (repo.root / "b").exists()


def test_cas_with_packed_refs(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a": b"1"}, "one")
    git(repo.root, "pack-refs", "--all")
    assert not (repo.git_dir / "refs/heads/main").exists()
    assert repo.head() == c1
    with pytest.raises(ConcurrentUpdateError):
        repo.commit_files({"b": b"2"}, "two", expected_head="0" * 40)
    c2 = repo.commit_files({"b": b"2"}, "two", expected_head=c1)
    git(repo.root, "commit", "-q", "--allow-empty", "-m", "user")
    git(repo.root, "pack-refs", "--all")
    with pytest.raises(ConcurrentUpdateError):
        repo.commit_files({"c": b"3"}, "three", expected_head=c2)
    c4 = repo.commit_files({"c": b"3"}, "three")
    assert git(repo.root, "rev-parse", "main").strip() == c4
    assert_healthy(repo.root)


def test_two_writers_racing(repo: GitRepo) -> None:
    repo.commit_files({"seed": b"0"}, "seed")
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with GitRepo.open(repo.root) as mine:
                for i in range(15):
                    while True:
                        try:
                            mine.commit_files({f"{name}/{i}.yaml": b"x"}, f"{name} {i}")
                            break
                        except ConcurrentUpdateError:
                            continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("p", "q")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert int(git(repo.root, "rev-list", "--count", "HEAD")) == 31
    assert len(git(repo.root, "ls-files").split()) == 31
    assert_healthy(repo.root)


# -- the user's own work ---------------------------------------------------------------------


def test_users_own_commit_keeps_our_files(repo: GitRepo) -> None:
    repo.commit_files({"events/1.yaml": b"1", "events/2.yaml": b"2"}, "ours")
    (repo.root / "other.txt").write_text("mine\n")
    git(repo.root, "add", "other.txt")
    git(repo.root, "commit", "-q", "-m", "user commit")
    tracked = git(repo.root, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert tracked == ["events/1.yaml", "events/2.yaml", "other.txt"]
    assert_healthy(repo.root)


def test_users_staged_changes_are_not_swept_in_nor_lost(repo: GitRepo) -> None:
    (repo.root / "mine.txt").write_text("v1\n")
    git(repo.root, "add", "mine.txt")
    git(repo.root, "commit", "-q", "-m", "user base")
    (repo.root / "mine.txt").write_text("v2 staged\n")
    (repo.root / "new.txt").write_text("new staged\n")
    git(repo.root, "add", "mine.txt", "new.txt")
    (repo.root / "mine.txt").write_text("v3 unstaged\n")
    repo.commit_files({"ours.txt": b"ours"}, "ours")
    assert git(repo.root, "show", "--name-only", "--format=", "HEAD").split() == ["ours.txt"]
    assert git(repo.root, "diff", "--cached", "--name-only").split() == ["mine.txt", "new.txt"]
    assert git(repo.root, "show", ":mine.txt") == "v2 staged\n"
    assert (repo.root / "mine.txt").read_text() == "v3 unstaged\n"
    assert status(repo.root) == "MM mine.txt\nA  new.txt\n"


def test_users_edit_of_a_generated_file_is_kept(repo: GitRepo) -> None:
    repo.commit_files({"gen/out.txt": b"v1\n"}, "v1")
    (repo.root / "gen/out.txt").write_text("edited by hand\n")
    repo.commit_files({"gen/out.txt": b"v2\n"}, "v2")
    assert (repo.root / "gen/out.txt").read_text() == "edited by hand\n"
    assert git(repo.root, "show", ":gen/out.txt") == "v2\n"  # the index follows HEAD
    assert status(repo.root) == " M gen/out.txt\n"


def test_never_writes_through_a_symlinked_folder(repo: GitRepo, git_env: Path) -> None:
    outside = git_env / "outside"
    outside.mkdir()
    (repo.root / "link").symlink_to(outside)
    commit = repo.commit_files({"link/x.txt": b"x"}, "through a link")
    assert repo.head() == commit
    assert list(outside.iterdir()) == []
    assert git(repo.root, "show", ":link/x.txt") == "x"  # the index still follows HEAD


# -- reading ---------------------------------------------------------------------------------


def test_reads_and_history(repo: GitRepo) -> None:
    c1 = repo.commit_files({"a/x": b"x1", "a/y": b"y1", "b/z": b"z1"}, "one")
    c2 = repo.commit_files({"a/x": b"x2", "a/y": None}, "two")
    c3 = repo.commit_files({"a/x": None, "a/w": b"x2"}, "rename x to w")
    git(repo.root, "mv", "b/z", "a/z")
    git(repo.root, "commit", "-q", "-m", "user rename")
    c4 = git(repo.root, "rev-parse", "HEAD").strip()

    assert list(repo.read_tree_files(c1, "a")) == [("a/x", b"x1"), ("a/y", b"y1")]
    assert list(repo.read_tree_files("HEAD", "a/")) == [("a/w", b"x2"), ("a/z", b"z1")]
    assert dict(repo.read_tree_files("HEAD", "")) == {"a/w": b"x2", "a/z": b"z1"}
    assert list(repo.read_tree_files("HEAD", "a/w")) == [("a/w", b"x2")]
    assert list(repo.read_tree_files("HEAD", "missing")) == []

    assert repo.tree_id("HEAD", "a") == git(repo.root, "rev-parse", "HEAD:a").strip()
    assert repo.tree_id(c1, "") == git(repo.root, "rev-parse", f"{c1}^{{tree}}").strip()
    assert repo.tree_id("HEAD", "a/w") is None and repo.tree_id("HEAD", "b") is None

    assert repo.resolve("HEAD") == c4
    assert repo.resolve("HEAD~3") == c1
    assert repo.resolve("main") == c4
    assert repo.resolve(c2[:10]) == c2
    for bad in ("nope", "-x", "0" * 40):
        with pytest.raises(GitError, match="unknown revision"):
            repo.resolve(bad)
    with pytest.raises(GitError, match="'nope'"):
        repo.read_tree_files("nope", "a")
    with pytest.raises(GitError, match="'nope'"):
        repo.tree_id("nope", "a")

    blob = git(repo.root, "rev-parse", f"{c1}:a/y").strip()
    changes = [(c.commit, c.status, c.path) for c in repo.path_history("a")]
    assert changes == [
        (c1, "A", "a/x"),
        (c1, "A", "a/y"),
        (c2, "M", "a/x"),
        (c2, "D", "a/y"),
        (c3, "A", "a/w"),
        (c3, "D", "a/x"),
        (c4, "A", "a/z"),
    ]
    deleted = [c for c in repo.path_history("a") if c.status == "D" and c.path == "a/y"]
    assert deleted[0].blob == blob
    everything = list(repo.path_history(""))
    assert ("D", "b/z") in [(c.status, c.path) for c in everything]
    assert len(everything) == 9


def test_history_of_unborn_branch_is_empty(repo: GitRepo) -> None:
    assert list(repo.path_history("")) == []
    with pytest.raises(GitError, match="unknown revision 'HEAD'"):
        repo.resolve("HEAD")
