"""The git adapter: the project's only door to git. GitPython opens the repository and writes
blobs; git itself commits (index first, then the ref), runs hooks, signs and reads history."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Final

import git as gitpython
from gitdb import IStream
from gitdb.db import LooseObjectDB

from orchestrator.adapters.git_branch import Branches
from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.adapters.git_commit import (
    EMPTY_TREE,
    CommitOptions,
    IndexCommitter,
    check_path,
)
from orchestrator.adapters.git_read import FileChange, decode_path, parse_log, stream_blobs
from orchestrator.adapters.git_remote import (
    PushOutcome,
    announce,
    delete_remote_branches,
    fetch,
    peers,
    push,
    push_branch,
    remote_sha,
    remote_task_branches,
    retire,
)
from orchestrator.errors import ConcurrentUpdateError, GitError, NotARepositoryError

log = logging.getLogger(__name__)

_TRUE = ("true", "yes", "on", "1")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


class GitRepo:
    """One work tree of a git repository. Build with GitRepo.open() or GitRepo.init()."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir
        self.verify = True
        """Run the repository's pre-commit and commit-msg hooks (config `git.verify`)."""
        self._runner = GitRunner(root, git_dir)
        self._config = self._read_config()
        index = os.environ.get("GIT_INDEX_FILE")
        self.index_path = Path(index) if index else git_dir / "index"
        self._lock = threading.Lock()
        self._committer = IndexCommitter(
            self._runner, root, git_dir, self.index_path, self._store_blob
        )

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """The repository whose work tree holds path (searched upward)."""
        path = Path(path)
        if not path.is_dir():
            raise NotARepositoryError(f"{path} is not a folder; run orch inside a git work tree")
        args = ["git", "rev-parse", "--path-format=absolute", "--show-toplevel", "--git-dir"]
        try:
            proc = subprocess.run(args, cwd=path, capture_output=True)
        except OSError as exc:
            raise GitError(
                f"cannot run git: {exc}; install git 2.36 or newer and put it on PATH"
            ) from exc
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace")
            if "not a git repository" in message:
                raise NotARepositoryError(
                    "not inside a git repository; run 'orch init' to create one"
                )
            if "must be run in a work tree" in message:
                raise NotARepositoryError(
                    f"{path} is not in a work tree (a bare repository?); "
                    "clone it and run orch in the clone"
                )
            if "unknown repository extension" in message:
                found = " ".join(message.split("found:", 1)[-1].split())
                raise GitError(
                    f"this repository uses a format the installed git cannot read ({found}); "
                    "upgrade git, or run orch in a clone made with the default format"
                )
            raise GitError(f"git cannot open {path}: {first_line(message)}; fix that and retry")
        root, git_dir = (Path(line) for line in os.fsdecode(proc.stdout).splitlines()[:2])
        return cls(root, git_dir)

    @classmethod
    def init(cls, path: Path) -> GitRepo:
        """Make path a repository (branch main) unless it is one. Idempotent; changes no
        setting of an existing repository. A path inside another repository (not its top)
        gets a repository of its own."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            repo = cls.open(path)
        except NotARepositoryError:
            repo = None
        if repo is not None and repo.root.resolve() == path.resolve():
            return repo
        proc = subprocess.run(["git", "init", "-q", "-b", "main", str(path)], capture_output=True)
        if proc.returncode != 0:
            raise GitError(
                f"git init failed: {first_line(proc.stderr)}; check that {path} is writable"
            )
        return cls.open(path)

    @cached_property
    def _repo(self) -> gitpython.Repo:
        try:
            return gitpython.Repo(self.root)
        except gitpython.GitError as exc:
            raise GitError(f"GitPython cannot open {self.root}: {exc}") from exc

    def _read_config(self) -> dict[str, str]:
        out = self._runner.run(["config", "-z", "--list"], ok=(0, 1))
        config = {}
        for item in out.split(b"\0"):
            key, _, value = item.decode("utf-8", "replace").partition("\n")
            if key:
                config[key.lower()] = value
        return config

    def config(self, key: str) -> str | None:
        """A git setting as git resolves it (includes, worktree and command-line scopes)."""
        return self._config.get(key.lower())

    def set_config(self, key: str, value: str) -> None:
        self._runner.run(["config", "--local", key, value])
        self._config = self._read_config()

    def close(self) -> None:
        """Stop GitPython's long-lived helper processes."""
        if "_repo" in self.__dict__:
            self._repo.close()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what can work -----------------------------------------------------------------------

    def preflight(self) -> None:
        """Refuse, before any model is paid for, what a commit could not finish."""
        if self.config("extensions.objectformat") not in (None, "sha1"):
            raise GitError(
                "this repository uses SHA-256 object names; orch supports SHA-1 repositories "
                "only: run orch in a SHA-1 clone"
            )
        self.branch()
        for name, what in (
            ("rebase-merge", "a rebase"), ("rebase-apply", "a rebase or 'git am'"),
            ("MERGE_HEAD", "a merge"), ("CHERRY_PICK_HEAD", "a cherry-pick"),
            ("REVERT_HEAD", "a revert"),
        ):
            if (self.git_dir / name).exists():
                raise GitError(
                    f"{what} is in progress in {self.root}; finish it or abort it "
                    "(see 'git status'), then run orch again"
                )
        self.recover()

    def recover(self) -> None:
        """Undo (or finish) a commit that a killed orch process left half done."""
        self._committer.recover()

    # -- refs --------------------------------------------------------------------------------

    def head(self) -> str | None:
        """The commit the current branch points to; None on an unborn branch."""
        proc = self._runner.run_status(["rev-parse", "-q", "--verify", "HEAD^{commit}"])
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def branch(self) -> str:
        """The current branch's name (also on an unborn branch)."""
        return self._branch_ref().removeprefix("refs/heads/")

    def _branch_ref(self) -> str:
        proc = self._runner.run_status(["symbolic-ref", "-q", "HEAD"])
        if proc.returncode != 0:
            raise GitError(
                "HEAD is detached; run 'git switch <branch>' first, so orch's commits land on "
                "a branch"
            )
        return proc.stdout.decode().strip()

    def resolve(self, rev: str) -> str:
        """The full sha of the commit rev names."""
        proc = self._runner.run_status(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"]
        )
        out = proc.stdout.decode().strip()
        if proc.returncode != 0 or not out:
            raise GitError(f"unknown revision '{rev}'; check the name with 'git log --oneline'")
        return out

    def has_commit(self, sha: str) -> bool:
        """The commit is in this clone's object store."""
        return self._runner.run_status(["cat-file", "-e", f"{sha}^{{commit}}"]).returncode == 0

    # -- committing --------------------------------------------------------------------------

    def commit_files(
        self,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        expected_head: str | None | _Unset = UNSET,
        merge_parents: tuple[str, ...] = (),
        merged_files: Callable[[str | None], Mapping[str, bytes | None]] | None = None,
    ) -> str:
        """Commit these files (None deletes) on the current branch; return the new commit's sha.
        With merge_parents it is a merge commit of those too; merged_files(head) gives what
        the merge changes on the branch's head, read under the index lock.

        As `git commit` does: under git's index lock, the index and work tree first, then the
        branch by compare-and-swap (against expected_head when given), then the index file.
        A person's staged changes stay staged; a person's edit of a file is never overwritten.
        """

        def read_branch() -> tuple[str, str | None, str]:
            ref = self._branch_ref()
            proc = self._runner.run_status(["rev-parse", ref, f"{ref}^{{tree}}", "--"])
            if proc.returncode == 0:
                sha, tree = proc.stdout.decode().split()[:2]
                return ref, sha, tree
            if self._runner.run_status(["rev-parse", "-q", "--verify", ref]).returncode == 0:
                raise GitError(f"cannot read {ref}: {first_line(proc.stderr)}; run 'git fsck'")
            return ref, None, EMPTY_TREE

        def check_expected(old: str | None) -> None:
            if not isinstance(expected_head, _Unset) and expected_head != old:
                raise ConcurrentUpdateError(
                    f"the branch is at {old or 'no commit'}, not at "
                    f"{expected_head or 'no commit'}; re-read the branch and retry"
                )

        def reflog(old: str | None) -> str:
            subject = message.split("\n", 1)[0]
            return f"commit{'' if old else ' (initial)'}: {subject}"

        with self._lock:
            for attempt in range(5):
                try:
                    return self._committer.commit(
                        read_branch, files, message, self._options, check_expected, reflog,
                        merge_parents, merged_files,
                    )
                except ConcurrentUpdateError:
                    # A person's plain `git commit` lets go of the index lock before it moves
                    # the branch: without an expected head, build on the one it made.
                    if not isinstance(expected_head, _Unset) or attempt == 4:
                        raise
            raise AssertionError("unreachable")

    @cached_property
    def branches(self) -> Branches:
        """Branches other than the checked-out one: task branches, merges into this one."""
        return Branches(self._runner, self._committer, lambda: self._options, self)

    @property
    def _options(self) -> CommitOptions:
        return CommitOptions(
            verify=self.verify,
            sign=(self.config("commit.gpgsign") or "").lower() in _TRUE,
            hooks_dir=self._hooks_dir,
            identity=self._identity,
            autocrlf=(self.config("core.autocrlf") or "").lower() in (*_TRUE, "input"),
        )

    @cached_property
    def _hooks_dir(self) -> Path | None:
        out = self._runner.run(["rev-parse", "--path-format=absolute", "--git-path", "hooks"])
        path = Path(out.decode().strip())
        return path if path.is_dir() else None

    @property
    def _identity(self) -> dict[str, str]:
        """The identity variables as they are now, plus orch's fallback identity where git
        would find none of its own."""
        fallback = {k: v for k, v in os.environ.items()
                    if k.startswith(("GIT_AUTHOR_", "GIT_COMMITTER_"))}
        for role in ("AUTHOR", "COMMITTER"):
            low = role.lower()
            if not (os.environ.get(f"GIT_{role}_NAME") or self.config(f"{low}.name")
                    or self.config("user.name")):
                fallback[f"GIT_{role}_NAME"] = "orch"
            if not (os.environ.get(f"GIT_{role}_EMAIL") or self.config(f"{low}.email")
                    or self.config("user.email") or os.environ.get("EMAIL")):
                fallback[f"GIT_{role}_EMAIL"] = "orch@localhost"
        return fallback

    @cached_property
    def _loose_objects(self) -> LooseObjectDB:
        """GitPython's own loose-object store (gitdb), in process: GitCmdObjectDB.store would
        start one `git hash-object` per blob."""
        out = self._runner.run(["rev-parse", "--path-format=absolute", "--git-path", "objects"])
        return LooseObjectDB(out.decode().strip())

    def _store_blob(self, data: bytes) -> str:
        """Write a blob (no filter applies to it: the caller checked)."""
        sha = self._loose_objects.store(IStream(b"blob", len(data), io.BytesIO(data))).hexsha
        return sha.decode() if isinstance(sha, bytes) else str(sha)

    def maintenance(self) -> None:
        """Let git pack loose objects when there are many (`git gc --auto`), as git commit does."""
        proc = self._runner.run_status(["gc", "--auto", "--quiet"])
        if proc.returncode != 0:
            log.warning("'git gc --auto' failed: %s", first_line(proc.stderr))

    # -- the remote: fetch, push (compare-and-swap), moving unpushed work on top -------------

    UNPUSHED_REF: Final = "refs/orch/unpushed"
    """Holds this clone's unpushed commits while they are moved onto what was fetched: a
    crash between the move and the new commit loses nothing."""

    def remote(self) -> str | None:
        """The remote the branch tracks, else `origin`, else None (a clone of nothing)."""
        configured = self.config(f"branch.{self.branch()}.remote")
        names = self._runner.run(["remote"]).decode().split()
        if configured in names:
            return configured
        return "origin" if "origin" in names else None

    def fetch(self, remote: str) -> str | None:
        """Fetch the current branch from remote; the sha it is at there (None: not there)."""
        return fetch(self._runner, remote, self.branch())

    def remote_sha(self, remote: str) -> str | None:
        return remote_sha(self._runner, remote, self.branch())

    def push(self, remote: str, commit: str,
             with_branches: Mapping[str, str] | None = None) -> PushOutcome:
        """Push `commit` as the branch, never forced: accepted, or a lost race to fetch and
        retry; with task branches (name -> commit) in the same atomic push."""
        return push(self._runner, remote, self.branch(), commit, with_branches)

    def remote_task_branches(self, remote: str) -> dict[str, str]:
        """The remote's task branches (orch/...) as last fetched: name -> sha."""
        return remote_task_branches(self._runner, remote)

    def delete_remote_branches(self, remote: str, branches: Mapping[str, str]) -> int:
        """Delete these branches on the remote, each only while it is at the sha given."""
        return delete_remote_branches(self._runner, remote, branches)

    def parents(self, commit: str) -> list[str]:
        out = self._runner.run(["rev-parse", f"{commit}^@"])
        return out.decode().split()

    def announce(self, remote: str, worker: str) -> bool:
        """Tell the other workers on `remote` that `worker` is dispatching (a heartbeat on
        refs/orch/workers/<worker>, never on a branch)."""
        return announce(self._runner, remote, worker, self._identity)

    def retire(self, remote: str, worker: str) -> None:
        retire(self._runner, remote, worker)

    def peers(self, since_unix: int) -> set[str]:
        """Workers whose heartbeat, as last fetched, is at or after `since_unix`."""
        return peers(self._runner, since_unix)

    def push_branch(self, remote: str, branch: str) -> PushOutcome:
        """Push another local branch (a task's) under its own name, never forced."""
        return push_branch(self._runner, remote, branch)

    def is_ancestor(self, older: str, newer: str) -> bool:
        proc = self._runner.run_status(["merge-base", "--is-ancestor", older, newer])
        return proc.returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self._runner.run_status(["merge-base", a, b])
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def changed_files(self, base: str | None, head: str) -> dict[str, bytes | None]:
        """What head's commits changed since base (None: the whole tree): path -> bytes, or
        None for a deleted file."""
        if base is None:
            return dict(self.read_tree_files(head, ""))
        out = self._runner.run(["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id",
                                base, head])
        fields = out.split(b"\0")
        changes: dict[str, bytes | None] = {}
        blobs: list[tuple[str, str]] = []
        for meta, name in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.decode().split()
            if len(parts) < 5:
                continue
            path = decode_path(name)
            if parts[4] == "D":
                changes[path] = None
            else:
                blobs.append((path, parts[3]))
        changes.update(stream_blobs(self._runner, blobs))
        return changes

    def commits_between(self, base: str | None, head: str) -> list[tuple[str, str]]:
        """(sha, message) of the commits in base..head, oldest first, first parents only."""
        out = self._runner.run(["log", "-z", "--reverse", "--first-parent", "--format=%H%n%B",
                                f"{base}..{head}" if base else head, "--"])
        commits = []
        for record in out.decode("utf-8", "replace").split("\0"):
            sha, _, message = record.strip("\n").partition("\n")
            if sha:
                commits.append((sha, message))
        return commits

    def replay(self, commit: str) -> None:
        """Make `commit` again on top of the branch, as itself (its author, date and message),
        the way `git rebase` does: git's own cherry-pick, hooks and signing as configured.
        A conflict is undone and is one error: the commit stays where it was."""
        with self._lock:
            proc = self._runner.run_status(["cherry-pick", "--allow-empty",
                                            "--keep-redundant-commits", commit])
            if proc.returncode != 0:
                self._runner.run_status(["cherry-pick", "--abort"])
                raise GitError(f"your unpushed commit {commit[:12]} does not apply on what was "
                               f"fetched: {first_line(proc.stderr or proc.stdout)}; it is kept "
                               f"under {self.UNPUSHED_REF}: rebase it yourself "
                               "('git rebase'), then run orch again")

    def saved_unpushed(self) -> str | None:
        proc = self._runner.run_status(["rev-parse", "-q", "--verify", self.UNPUSHED_REF])
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def move_onto(self, upstream: str, unpushed: str) -> None:
        """Point the branch (index and work tree with it) at upstream, keeping a person's
        uncommitted changes; the unpushed commits are kept under UNPUSHED_REF first.
        `git reset --keep` does it under git's own index lock."""
        with self._lock:
            self._runner.run(["update-ref", self.UNPUSHED_REF, unpushed])
            proc = self._runner.run_status(["reset", "--quiet", "--keep", upstream])
            if proc.returncode != 0:
                raise GitError(f"cannot move {self.branch()} onto what was fetched: "
                               f"{first_line(proc.stderr)}; commit or stash the changes "
                               "'git status' shows, then run orch again")

    def clear_unpushed(self) -> None:
        self._runner.run(["update-ref", "-d", self.UNPUSHED_REF])

    # -- reading -----------------------------------------------------------------------------

    def tree_id(self, rev: str, path: str) -> str | None:
        """The sha of the tree at path in rev ('' is the root); None if there is no folder there."""
        commit = self.resolve(rev)
        base = path.strip("/")
        if not base:
            return self._runner.run(["rev-parse", f"{commit}^{{tree}}"]).decode().strip()
        check_path(base)
        out = self._runner.run(["ls-tree", "-z", "--full-tree", commit, "--", base])
        for record in out.split(b"\0"):
            meta, _, name = record.partition(b"\t")
            fields = meta.split(b" ")
            if len(fields) == 3 and fields[1] == b"tree" and decode_path(name) == base:
                return fields[2].decode()
        return None

    def read_tree_files(self, rev: str, prefix: str) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of every blob under prefix at rev, in tree order."""
        commit = self.resolve(rev)
        base = prefix.strip("/")
        args = ["ls-tree", "-r", "-z", "--full-tree", commit]
        if base:
            check_path(base)
            args += ["--", base]
        blobs = []
        for record in self._runner.run(args).split(b"\0"):
            meta, _, name = record.partition(b"\t")
            fields = meta.split(b" ")
            path = decode_path(name)
            if len(fields) == 3 and fields[1] == b"blob" and (
                not base or path == base or path.startswith(base + "/")
            ):
                blobs.append((path, fields[2].decode()))
        return stream_blobs(self._runner, blobs)

    def modified_files(self, prefix: str) -> list[str]:
        """Tracked files under prefix that the work tree has changed or deleted, as git's
        index stat cache sees them (one `git diff-files`, fast even at 100k files)."""
        return self.start_modified_files(prefix)()

    def start_modified_files(self, prefix: str) -> Callable[[], list[str]]:
        """`modified_files` started in the background: call the result to collect it, so the
        caller's own work overlaps git's sweep of the index."""
        if not self.index_path.exists():
            return list
        proc = self._runner.popen(["diff-files", "--name-only", "-z", "--", prefix])

        def collect() -> list[str]:
            out, err = proc.communicate()
            if proc.returncode not in (0, 1):
                raise GitError(f"'git diff-files' failed: {first_line(err)}; check 'git status'")
            return [p for p in out.decode("utf-8", "replace").split("\0") if p]

        return collect

    def path_history(self, prefix: str) -> Iterator[FileChange]:
        """Every add/modify/delete of files under prefix along HEAD's history, oldest first.

        One `git log --raw --no-renames -z` process: a rename is a delete plus an add. Merge
        commits show no changes of their own; the changes arrive with the commits they merged.
        """
        head = self.head()
        if head is None:
            return iter(())
        args = ["log", "--reverse", "--no-renames", "--raw", "-z", "--no-abbrev", "--format=%H",
                head]
        base = prefix.strip("/")
        if base:
            check_path(base)
            args += ["--", f":(literal){base}"]
        return parse_log(self._runner.stream_z(args))
