"""The git adapter: the project's only door to git (commits as objects, refs, work tree, log)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.adapters.git_objects import (
    BLOB_MODE,
    TREE_MODE,
    Entry,
    ObjectStore,
    PathKey,
    ident,
    path_key,
)
from orchestrator.adapters.git_queue import SyncQueue
from orchestrator.adapters.git_read import FileChange, decode_path, parse_log, stream_blobs
from orchestrator.adapters.git_refs import RefStore, short_ref
from orchestrator.adapters.git_sync import Change, WorktreeSync
from orchestrator.errors import ConcurrentUpdateError, GitError, NotARepositoryError

log = logging.getLogger(__name__)

INDEX_SETTINGS = (("core.splitIndex", "true"), ("index.version", "4"))
_HEX40 = re.compile(r"[0-9a-f]{40}")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


class GitRepo:
    """One work tree of a git repository. Build with GitRepo.open() or GitRepo.init()."""

    def __init__(
        self, root: Path, git_dir: Path, common_dir: Path, *, background_index: bool = False
    ) -> None:
        self.root = root
        self.background_index = background_index
        self.git_dir = git_dir
        self._runner = GitRunner(root, git_dir)
        self._config = self._read_config()
        if self._config.get("extensions.objectformat", "sha1") != "sha1":
            raise GitError(
                "this repository uses SHA-256 object names; orch supports SHA-1 repositories only"
            )
        self._refs = RefStore(git_dir, common_dir)
        objects_dir = Path(os.environ.get("GIT_OBJECT_DIRECTORY") or common_dir / "objects")
        level = self._config.get("core.loosecompression") or self._config.get("core.compression")
        self._objects = ObjectStore(objects_dir, self._runner, int(level) if level else 1)
        self._sync = WorktreeSync(root, git_dir, self._objects, self._refs, self._runner)
        self._queue = SyncQueue(self._sync)
        self._lock = threading.RLock()
        # Runs on close(), on garbage collection, or at interpreter exit, whichever comes first.
        self._finalizer = weakref.finalize(self, _release, self._queue, self._objects, self._sync)

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, background_index: bool = False) -> GitRepo:
        """The repository whose work tree holds path (searched upward).

        background_index=True makes commit_files() default to wait_index=False.
        """
        path = Path(path)
        if not path.is_dir():
            raise NotARepositoryError(f"{path} is not a folder; run orch inside a git work tree")
        args = [
            "git",
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-dir",
            "--git-common-dir",
        ]
        try:
            proc = subprocess.run(args, cwd=path, capture_output=True)
        except OSError as exc:
            raise GitError(
                f"cannot run git: {exc}; install git 2.31 or newer and put it on PATH"
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
            raise GitError(f"git cannot open {path}: {first_line(message)}; fix that and retry")
        root, git_dir, common_dir = (
            Path(line) for line in os.fsdecode(proc.stdout).splitlines()[:3]
        )
        return cls(root, git_dir, common_dir, background_index=background_index)

    @classmethod
    def init(cls, path: Path, *, background_index: bool = False) -> GitRepo:
        """Make path a repository (branch main) unless it is one; set the index settings.

        Idempotent. A path inside another repository (not its top) gets a repository of its own.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(NotARepositoryError):
            repo = cls.open(path, background_index=background_index)
            if repo.root.resolve() == path.resolve():
                repo._apply_index_settings()
                return repo
            repo.close()
        proc = subprocess.run(["git", "init", "-q", "-b", "main", str(path)], capture_output=True)
        if proc.returncode != 0:
            raise GitError(
                f"git init failed: {first_line(proc.stderr)}; check that {path} is writable"
            )
        repo = cls.open(path, background_index=background_index)
        repo._apply_index_settings()
        return repo

    def _apply_index_settings(self) -> None:
        local = self._read_config("--local")
        missing = [(k, v) for k, v in INDEX_SETTINGS if k.lower() not in local]
        for key, value in missing:
            self.set_config(key, value)
        if missing and (self.git_dir / "index").exists():
            self._runner.run(["update-index", "--split-index", "--index-version", "4"])

    def _read_config(self, *scope: str) -> dict[str, str]:
        out = self._runner.run(["config", *scope, "-z", "--list"], ok=(0, 1))
        config = {}
        for item in out.split(b"\0"):
            key, _, value = item.decode("utf-8", "replace").partition("\n")
            if key:
                config[key.lower()] = value
        return config

    def set_config(self, key: str, value: str) -> None:
        self._runner.run(["config", "--local", key, value])
        self._config = self._read_config()

    def close(self) -> None:
        """Finish the index updates still queued, then stop helper processes and threads."""
        self._finalizer()

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- refs --------------------------------------------------------------------------------

    def head(self) -> str | None:
        """The commit the current branch points to; None on an unborn branch."""
        return self._refs.read_head()

    def branch(self) -> str:
        """The current branch's name (also on an unborn branch)."""
        ref = self._refs.head_ref()
        if ref is None:
            raise GitError("HEAD is detached; run 'git switch <branch>' first")
        return short_ref(ref)

    def resolve(self, rev: str) -> str:
        """The full sha of the commit rev names."""
        if rev == "HEAD" and (head := self.head()) is not None:
            return head
        if _HEX40.fullmatch(rev):
            with contextlib.suppress(GitError):
                self._objects.read_commit(bytes.fromhex(rev))
                return rev
        proc = self._runner.run_status(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"]
        )
        out = proc.stdout.decode().strip()
        if proc.returncode != 0 or not _HEX40.fullmatch(out):
            raise GitError(f"unknown revision '{rev}'; check the name with 'git log --oneline'")
        return out

    # -- committing --------------------------------------------------------------------------

    def commit_files(
        self,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        expected_head: str | None | _Unset = UNSET,
        wait_index: bool | None = None,
    ) -> str:
        """Commit these files (None deletes) on the current branch; return the new commit's sha.

        The commit is built from objects (never from the index) and the branch moves by a
        compare-and-swap against the head read at the start (or expected_head when given).
        Then the files land in the work tree and the index. wait_index (default: not
        self.background_index) waits for the index; False leaves it to a background thread
        that batches the updates of many commits (flush() or close() waits for it).
        """
        changes = {path_key(path): data for path, data in files.items()}
        body = (message if message.endswith("\n") else message + "\n").encode()
        with self._lock:
            ref = self._refs.head_ref()
            if ref is None:
                raise GitError("HEAD is detached; run 'git switch <branch>' before orch commits")
            old = self._refs.read_ref(ref)
            if not isinstance(expected_head, _Unset) and expected_head != old:
                raise ConcurrentUpdateError(
                    f"branch '{short_ref(ref)}' is at {old or 'no commit'}, not at "
                    f"{expected_head or 'no commit'}; re-read the branch and retry"
                )
            parents = [bytes.fromhex(old)] if old else []
            base = self._objects.read_commit(parents[0])[0] if parents else None
            entries: dict[PathKey, Entry | None] = {}
            contents: dict[bytes, bytes] = {}
            journal: list[Change] = []
            for key, data in changes.items():
                before = self._objects.lookup(base, key)
                if before is not None and before[0] == TREE_MODE:
                    name = "/".join(decode_path(k) for k in key)
                    raise GitError(f"'{name}' is a folder at HEAD; name a file")
                sha = None if data is None else self._objects.write(b"blob", data)
                if sha is not None and data is not None:
                    contents[sha] = data
                entries[key] = None if sha is None else (BLOB_MODE, sha)
                journal.append(Change(b"/".join(key), before[1] if before else None, sha))
            tree = self._objects.edit_tree(base, entries) or self._objects.write_tree({})
            committer = ident("COMMITTER", self._config)
            commit = self._objects.write_commit(
                tree, parents, ident("AUTHOR", self._config), committer, body
            ).hex()
            self._sync.journal.append(journal)
            subject = body.decode("utf-8", "replace").split("\n", 1)[0]
            reflog = f"commit{'' if old else ' (initial)'}: {subject}"
            try:
                self._refs.cas(ref, old, commit, committer, reflog, self._log_refs())
            except BaseException:
                self._sync.journal.done(1)
                raise
        wait = not self.background_index if wait_index is None else wait_index
        self._after_commit(commit, journal, contents, wait)
        return commit

    def _after_commit(
        self, commit: str, changes: list[Change], contents: dict[bytes, bytes], wait: bool
    ) -> None:
        """Work tree now, then the index (now or in the background); failures are retried."""
        try:
            self._sync.update_worktree(changes, contents)
            worktree_done = True
        except (GitError, OSError) as exc:
            log.warning("commit %s landed; its files are not in the work tree yet: %s", commit, exc)
            worktree_done = False
        self._queue.submit(changes, worktree_done, background=not wait)
        if wait:
            try:
                self._queue.flush()
            except GitError as exc:
                log.warning("commit %s landed; the index is behind: %s", commit, exc)

    def flush(self) -> None:
        """Wait until every queued index update is done; GitError if the index cannot be updated."""
        self._queue.flush()

    def sync_worktree(self) -> None:
        """Finish any work-tree/index update that a crash (or a failure) left pending."""
        self._sync.repair()
        self._queue.flush()

    def maintenance(self) -> None:
        """Let git pack loose objects when there are many (`git gc --auto`)."""
        self._runner.run(["gc", "--auto", "--quiet"])

    def _log_refs(self) -> bool:
        value = self._config.get("core.logallrefupdates", "true").lower()
        return value in ("true", "always", "1", "yes", "on")

    # -- reading -----------------------------------------------------------------------------

    def tree_id(self, rev: str, path: str) -> str | None:
        """The sha of the tree at path in rev ('' is the root); None if there is no folder there."""
        entry = self._entry(self.resolve(rev), path)
        return entry[1].hex() if entry is not None and entry[0] == TREE_MODE else None

    def _entry(self, commit: str, path: str) -> Entry | None:
        tree = self._objects.read_commit(bytes.fromhex(commit))[0]
        key = path_key(path.rstrip("/")) if path.strip("/") else ()
        return self._objects.lookup(tree, key) if key else (TREE_MODE, tree)

    def read_tree_files(self, rev: str, prefix: str) -> Iterator[tuple[str, bytes]]:
        """(path, bytes) of every blob under prefix at rev, in tree order."""
        entry = self._entry(self.resolve(rev), prefix)
        base = prefix.strip("/")
        if entry is None:
            return iter(())
        if entry[0] != TREE_MODE:
            return iter([(base, self._objects.read(entry[1])[1])])
        listing = self._runner.run(["ls-tree", "-r", "-z", entry[1].hex()])
        blobs = []
        for record in listing.split(b"\0"):
            meta, _, name = record.partition(b"\t")
            fields = meta.split(b" ")
            if len(fields) == 3 and fields[1] == b"blob":
                path = decode_path(name) if not base else f"{base}/{decode_path(name)}"
                blobs.append((path, fields[2].decode()))
        return stream_blobs(self._runner, blobs)

    def modified_files(self, prefix: str) -> list[str]:
        """Tracked files under prefix that the work tree has changed or deleted, as git's
        index stat cache sees them (one `git diff-files`, fast even at 100k files)."""
        return self.start_modified_files(prefix)()

    def start_modified_files(self, prefix: str) -> Callable[[], list[str]]:
        """`modified_files` started in the background: call the result to collect it, so the
        caller's own work overlaps git's sweep of the index."""
        if self.head() is None:
            return list
        self.flush()
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
        args = [
            "log",
            "--reverse",
            "--no-renames",
            "--raw",
            "-z",
            "--no-abbrev",
            "--format=%H",
            head,
        ]
        base = prefix.strip("/")
        if base:
            path_key(base)
            args += ["--", f":(literal){base}"]
        return parse_log(self._runner.stream_z(args))


def _release(queue: SyncQueue, objects: ObjectStore, sync: WorktreeSync) -> None:
    try:
        queue.flush()
    except GitError as exc:
        log.warning("%s", exc)
    queue.close()
    objects.close()
    sync.close()
