"""One orch commit the way `git commit` makes one: the index first, the ref second, both
under git's own `index.lock`, with the repository's hooks, signing and filters.

The steps, while the lock is held (so no person's git command can run in between):
copy the index, put the new blobs in the copy, write the files into the work tree with git's
own checkout (eol and smudge filters), write the tree, run the hooks, write the commit
(signed when the repository asks for it), move the branch by compare-and-swap, and only then
put the copy in place of the index. A journal in `<git dir>/orch/` records what the work tree
was given, so a process killed at any step is undone (or finished) by the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.adapters.crash_points import crash_point
from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.adapters.git_lock import (
    IndexLock,
    StaleLockError,
    is_stale,
    lock_owner,
    wait_for_orphans,
)
from orchestrator.errors import ConcurrentUpdateError, GitError

ZERO = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
ORCH_FOLDERS = (".orchestrator", "project")
BLOB_MODE = "100644"
_CONVERTING = ("filter", "working-tree-encoding", "ident")
_EOL = ("text", "eol", "crlf")


class HookRefusedError(GitError):
    """Raised when a pre-commit or commit-msg hook of the repository refuses orch's commit."""


@dataclass(frozen=True)
class CommitOptions:
    """What the repository asks of every commit: hooks (unless verify is off) and signing."""

    verify: bool = True
    sign: bool = False
    hooks_dir: Path | None = None
    identity: Mapping[str, str] | None = None
    autocrlf: bool = False
    """core.autocrlf is true or input: CRLF in a text file is converted on the way in."""


IndexSignature = tuple[int, int, int, bytes]
"""Inode, size, mtime and git's checksum of an index file (see _signature)."""


def check_path(path: str) -> str:
    """A repository-relative posix path, refusing anything that could leave the work tree."""
    why = ""
    if not isinstance(path, str) or not path:
        why = "it is empty"
    elif path.startswith("/"):
        why = "it is absolute"
    elif "\0" in path or "\\" in path or "\n" in path:
        why = "it holds a NUL, a newline or a backslash"
    else:
        for part in path.split("/"):
            if part in ("", ".", ".."):
                why = "it has an empty, '.' or '..' part"
            elif part.lower() == ".git":
                why = "it points into .git"
    if why:
        raise GitError(
            f"invalid path {path!r}: {why}; use a relative path with '/' inside the repository"
        )
    return path


class IndexCommitter:
    """Makes orch's commits in one work tree; see the module docstring for the order."""

    def __init__(
        self,
        runner: GitRunner,
        root: Path,
        git_dir: Path,
        index: Path,
        store_blob: Callable[[bytes], str],
    ) -> None:
        self.runner = runner
        self.root = root
        self.index = index
        self.store_blob = store_blob
        self.lock = IndexLock(index)
        self.state_dir = git_dir / "orch"
        self.journal = self.state_dir / "commit.journal"
        self.next_index = self.state_dir / "index.next"
        self.commit_index = self.state_dir / "index.commit"
        self.message_file = self.state_dir / "COMMIT_EDITMSG"
        self.last_commit = self.state_dir / "last-commit"
        self._clean_index: tuple[str, IndexSignature] | None = None

    # -- the commit ----------------------------------------------------------------------------

    def commit(
        self,
        read_branch: Callable[[], tuple[str, str | None, str]],
        files: Mapping[str, bytes | None],
        message: str,
        options: CommitOptions,
        expected_head: Callable[[str | None], None],
        reflog: Callable[[str | None], str],
        merged: Sequence[str] = (),
        merged_files: Callable[[str | None], Mapping[str, bytes | None]] | None = None,
    ) -> str:
        """Commit files (None deletes) on the branch read_branch() names; return the sha.
        `merged` are further parents: a merge commit, whose merged files `merged_files`
        works out from the branch's commit, read under the lock (so no commit of a person's
        can slip in between)."""
        for path in files:
            check_path(path)
        self._acquire()
        written: list[tuple[str, bool]] = []
        try:
            ref, old, base_tree = read_branch()
            expected_head(old)
            if merged_files is not None:
                files = {**merged_files(old), **files}
                for path in files:
                    check_path(path)
            self.state_dir.mkdir(parents=True, exist_ok=True)
            entries = self._entries(files, options.autocrlf)
            if old:
                entries += self._dropped_by_others(old, files)
            self._copy_index()
            staged = self.next_index.exists() and not self._index_is_ours(old) and (
                self._index_tree(self.next_index) != base_tree)
            if staged and old and self._repair_stale_entries(old):
                staged = self._index_tree(self.next_index) != base_tree
            writable, tracked = self._writable(files, old)
            self._update_index(self.next_index, entries)
            plan = [(p, p in tracked) for p in files if p in writable]
            # A pre-commit hook checks the files in the work tree, so they go there first;
            # without one they go last, so a person's git command that reads the work tree
            # without the lock (git stash does) has the shortest window to see them half done.
            hooked = options.verify and self._has_hook(options, "pre-commit")
            if hooked:
                written = self._checkout(plan, files, old)
            commit_index = self.next_index
            if staged:
                # The person has staged changes of their own: they stay staged, not committed.
                commit_index = self.commit_index
                with contextlib.suppress(FileNotFoundError):
                    commit_index.unlink()
                if old:
                    self.runner.run(["read-tree", old], index=commit_index)
                self._update_index(commit_index, entries)
            tree = self._index_tree(commit_index)
            body = message if message.endswith("\n") else message + "\n"
            self.message_file.write_text(body, encoding="utf-8")
            if options.verify:
                self._hook(options, "pre-commit", [], commit_index)
                self._hook(options, "commit-msg", [str(self.message_file)], commit_index)
            new = self._commit_tree(tree, old, options, merged)
            if not hooked:
                written = self._checkout(plan, files, old)
            crash_point("after-files")
            self._write_journal({"phase": "ref", "old": old, "new": new, "written": written})
            self._move_ref(ref, old, new, reflog(old))
            self.last_commit.write_text(new + "\n")
            crash_point("after-ref")
        except BaseException:
            self._undo(written)
            self._finish()
            raise
        os.replace(self.next_index, self.index)
        signature = None if staged else _signature(self.index)
        self._clean_index = None if signature is None else (new, signature)
        self._finish()
        if options.hooks_dir is not None:
            with contextlib.suppress(GitError):
                self._hook(options, "post-commit", [], self.index)
        return new

    def _index_is_ours(self, head: str | None) -> bool:
        """The index is the one orch's last commit wrote, untouched since (git replaces the
        file on every write), and that commit staged nothing of a person's: it is HEAD's
        tree exactly, so no `write-tree` of 100k entries is needed to tell."""
        if self._clean_index is None:
            return False
        signature = _signature(self.index)
        return signature is not None and self._clean_index == (head, signature)

    def _acquire(self) -> None:
        try:
            self.lock.acquire()
        except StaleLockError:
            self.recover()
            self.lock.acquire()

    def _finish(self) -> None:
        for path in (self.next_index, self.commit_index, self.journal):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.lock.release()

    def _entries(
        self, files: Mapping[str, bytes | None], autocrlf: bool
    ) -> list[tuple[str, str, str]]:
        """(mode, blob, path) per file; blobs pass git's clean filters where any apply."""
        converting = self._converting(
            [p for p, d in files.items() if d is not None], files, autocrlf
        )
        entries = []
        for path, data in files.items():
            if data is None:
                entries.append(("0", ZERO, path))
            elif path in converting:
                sha = self.runner.run(
                    ["hash-object", "-w", "--stdin", f"--path={path}"], input=data
                ).decode().strip()
                entries.append((BLOB_MODE, sha, path))
            else:
                entries.append((BLOB_MODE, self.store_blob(data), path))
        return entries

    def _converting(
        self, paths: list[str], files: Mapping[str, bytes | None], autocrlf: bool
    ) -> set[str]:
        """Paths whose content git would change on the way in (filters, eol, ident, encoding)."""
        if not paths:
            return set()
        out = self.runner.run(
            ["check-attr", "-z", "--stdin", *_CONVERTING, *_EOL], input="\0".join(paths).encode()
        )
        fields = out.split(b"\0")
        found: set[str] = set()
        for i in range(0, len(fields) - 2, 3):
            path, attr, value = fields[i].decode(), fields[i + 1].decode(), fields[i + 2]
            if value in (b"unspecified", b"unset"):
                continue
            if attr in _CONVERTING or b"\r" in (files.get(path) or b""):
                found.add(path)
        if autocrlf:
            found |= {p for p in paths if b"\r" in (files[p] or b"")}
        return found

    def _copy_index(self) -> None:
        """The person's index, copied for orch's update, with its mtime: git tells a file
        changed in the second its entry was recorded ("racily clean") by comparing the entry's
        mtime with the index file's. A copy dated now made such an entry look clean for good:
        a person's edit of the same size, in the same second as their last `git add`, was
        then never staged (`git add -A` saw nothing, and the edit stayed out of every commit)."""
        with contextlib.suppress(FileNotFoundError):
            self.next_index.unlink()
        if self.index.exists():
            shutil.copyfile(self.index, self.next_index)
            st = self.index.stat()
            os.utime(self.next_index, ns=(st.st_atime_ns, st.st_mtime_ns))

    def _index_tree(self, index: Path) -> str:
        proc = self.runner.run_status(["write-tree"], index=index)
        if proc.returncode != 0:
            raise GitError(
                f"the index cannot be written as a tree: {first_line(proc.stderr)}; "
                "finish or abort the merge shown by 'git status'"
            )
        return proc.stdout.decode().strip()

    def _worktree_blobs(self, paths: list[str]) -> list[str]:
        """The blob each work-tree file would be (`git hash-object`, through its filters)."""
        return self.runner.run(
            ["hash-object", "--stdin-paths"], input="\n".join(paths).encode() + b"\n"
        ).decode().split()

    def _dropped_by_others(
        self, old: str, files: Mapping[str, bytes | None]
    ) -> list[tuple[str, str, str]]:
        """orch's files that a commit made since orch's last one dropped or reverted while
        the work tree kept orch's version: staged again, so this commit restores them.

        `git commit` reads the index before it takes the lock, and HEAD after: a commit of
        a person's that overlaps one of orch's records the index as it was before orch's
        commit, on top of it. The work tree still holding orch's version tells that apart
        from a person's own change (they commit what is in their work tree)."""
        try:
            last = self.last_commit.read_text().strip()
        except OSError:
            return []
        if not last or last == old or self.runner.run_status(
            ["merge-base", "--is-ancestor", last, old]
        ).returncode != 0:
            return []
        out = self.runner.run(["diff", "--raw", "-z", "--no-renames", "--abbrev=40", last, old,
                               "--", *ORCH_FOLDERS])
        theirs = {path: sha for path, sha in _raw_changes(out, b"DM") if path not in files}
        present = [p for p in theirs if (self.root / p).is_file()]
        if not present:
            return []
        hashes = self._worktree_blobs(present)
        return [(BLOB_MODE, sha, path) for path, sha in zip(present, hashes, strict=False)
                if sha == theirs[path]]

    def _repair_stale_entries(self, old: str) -> bool:
        """Put back index entries of orch's folders that an older copy of the index overwrote.

        `git commit` reads the index before it takes the lock; when orch commits in between,
        git writes back what it read, so the index loses orch's last files (and a person's
        next commit would drop them). The sign is exact: the work tree holds the file as HEAD
        has it, the index holds something else. A person who stages a change stages what is
        in their work tree, so their staging never looks like that."""
        out = self.runner.run(
            ["diff-index", "--cached", "-z", "--no-renames", "--raw", "--abbrev=40", old, "--",
             *ORCH_FOLDERS],
            index=self.next_index,
        )
        candidates = dict(_raw_changes(out, b"DM"))
        present = [p for p in candidates if (self.root / p).is_file()]
        if not present:
            return False
        hashes = self._worktree_blobs(present)
        stale = [p for p, sha in zip(present, hashes, strict=False) if sha == candidates[p]]
        if stale:
            self.runner.run(["reset", "-q", old, "--", *[f":(literal){p}" for p in stale]],
                            index=self.next_index, ok=(0, 1))
        return bool(stale)

    def _update_index(self, index: Path, entries: list[tuple[str, str, str]]) -> None:
        """Stage the entries as `git update-index --add` does: a file where the index has a
        folder (or the reverse) is refused, never silently replaced."""
        gone = [path for mode, _, path in entries if mode == "0"]
        if gone and (folders := self._folders(index, gone)):
            raise GitError(f"'{folders[0]}' is a folder in the index; name a file to delete")
        added = [f"{mode},{sha},{path}" for mode, sha, path in entries if mode != "0"]
        for start in range(0, max(len(added), 1), 2000):
            args = ["update-index", "--add"]
            for item in added[start:start + 2000]:
                args += ["--cacheinfo", item]
            if start == 0 and gone:
                args += ["--force-remove", "--", *gone]
            if len(args) == 2:
                return
            proc = self.runner.run_status(args, index=index)
            if proc.returncode != 0:
                raise GitError(
                    f"cannot stage orch's files: {first_line(proc.stderr)}; "
                    "a file and a folder of the same name cannot both be written"
                )

    def _folders(self, index: Path, paths: list[str]) -> list[str]:
        if not index.exists():
            return []
        listing = self.runner.run(
            ["ls-files", "-z", "--cached", "--", *[f":(literal){p}" for p in paths]], index=index
        )
        names = {p.decode("utf-8", "surrogateescape") for p in listing.split(b"\0") if p}
        return [p for p in paths if any(n.startswith(p + "/") for n in names)]

    # -- the work tree -------------------------------------------------------------------------

    def _writable(
        self, files: Mapping[str, bytes | None], old: str | None
    ) -> tuple[set[str], set[str]]:
        """Paths whose work-tree copy is orch's to replace: absent, unchanged since the index,
        or holding what HEAD or orch's last commit holds (the index may be an older copy that
        a person's concurrent `git commit` wrote back); a person's edit (or an untracked file
        of theirs) is never overwritten. Also which of the paths present are tracked (undoing
        restores those, removes the rest)."""
        tracked: set[str] = set()
        present = [p for p in files if os.path.lexists(self.root / p)]
        ok = {p for p in files if p not in present and not self._through_link(p)}
        if present:
            listing = self.runner.run(
                ["ls-files", "-z", "--cached", "--", *[f":(literal){p}" for p in present]],
                index=self.next_index,
            )
            tracked = {p.decode("utf-8", "surrogateescape") for p in listing.split(b"\0") if p}
            changed_out = self.runner.run(
                ["diff-files", "--name-only", "-z", "--", *[f":(literal){p}" for p in tracked]],
                index=self.next_index, ok=(0, 1),
            ) if tracked else b""
            changed = {p.decode("utf-8", "surrogateescape") for p in changed_out.split(b"\0") if p}
            ok |= {p for p in present if p in tracked and p not in changed}
            ok |= self._committed_copies(sorted(changed), old)
        return ok, tracked

    def _committed_copies(self, paths: list[str], old: str | None) -> set[str]:
        """Of these work-tree files, those whose content is a version HEAD or orch's last
        commit holds: orch's own, not a person's edit."""
        if not paths or not old:
            return set()
        hashes = self._worktree_blobs(paths)
        known: set[tuple[str, str]] = set()
        commits = [old]
        with contextlib.suppress(OSError):
            last = self.last_commit.read_text().strip()
            if last and last != old:
                commits.append(last)
        for commit in commits:
            out = self.runner.run_status(
                ["ls-tree", "-z", commit, "--", *[f":(literal){p}" for p in paths]])
            for record in out.stdout.split(b"\0"):
                meta, _, name = record.partition(b"\t")
                fields = meta.split(b" ")
                if len(fields) == 3:
                    known.add((name.decode("utf-8", "surrogateescape"), fields[2].decode()))
        return {p for p, sha in zip(paths, hashes, strict=False) if (p, sha) in known}

    def _through_link(self, path: str) -> bool:
        parent = self.root
        for part in path.split("/")[:-1]:
            parent = parent / part
            if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                return True
        return False

    def _checkout(
        self, plan: list[tuple[str, bool]], files: Mapping[str, bytes | None], old: str | None
    ) -> list[tuple[str, bool]]:
        self._write_journal({"phase": "worktree", "old": old, "written": plan})
        try:
            self._write_worktree(plan, files)
        except BaseException:
            self._undo(plan)
            raise
        return plan

    def _write_worktree(
        self, written: list[tuple[str, bool]], files: Mapping[str, bytes | None]
    ) -> None:
        """Check out the new files (git applies eol and smudge filters, and records their stat
        in the index copy); remove deleted ones."""
        out = [p for p, _ in written if files[p] is not None]
        if out:
            proc = self.runner.run_status(
                ["checkout-index", "-f", "-u", "-z", "--stdin"],
                input="\0".join(out).encode("utf-8", "surrogateescape"),
                index=self.next_index,
            )
            if proc.returncode != 0:
                raise GitError(f"cannot write orch's files: {first_line(proc.stderr)}")
        for path, _ in written:
            if files[path] is None:
                _remove_file(self.root, path)

    def _undo(self, written: list[tuple[str, bool]]) -> None:
        """Put the work tree back as the (untouched) index has it."""
        restore = [p for p, tracked in written if tracked]
        for path, tracked in written:
            if not tracked:
                _remove_file(self.root, path)
        if restore:
            self.runner.run_status(
                ["checkout-index", "-f", "-z", "--stdin"],
                input="\0".join(restore).encode("utf-8", "surrogateescape"),
            )

    # -- hooks, commit, ref ----------------------------------------------------------------------

    def _has_hook(self, options: CommitOptions, name: str) -> bool:
        return options.hooks_dir is not None and os.access(options.hooks_dir / name, os.X_OK)

    def _hook(self, options: CommitOptions, name: str, args: list[str], index: Path) -> None:
        if not self._has_hook(options, name):
            return
        proc = self.runner.run_status(
            ["hook", "run", "--ignore-missing", name, "--", *args], index=index,
            env={"GIT_EDITOR": ":"},
        )
        if proc.returncode != 0:
            output = (proc.stderr + proc.stdout).decode("utf-8", "replace").strip()
            said = " | ".join(line.strip() for line in output.splitlines() if line.strip())
            raise HookRefusedError(
                f"the repository's {name} hook refused orch's commit: {said[:300] or 'no output'}"
                "; fix what it reports, or set git.verify: false in .orchestrator/config.yaml"
            )

    def tree_with(self, base_tree: str, files: Mapping[str, bytes | None],
                  autocrlf: bool) -> str:
        """The tree of base_tree with files written (None deletes), built in an index of its
        own: neither the person's index nor the work tree is touched (a branch that is not
        checked out). Blobs pass the clean filters as in `commit`."""
        for path in files:
            check_path(path)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        index = self.state_dir / f"index.branch.{os.getpid()}.{threading.get_ident()}"
        # The name is this live thread's: whatever holds it now was left by a dead process.
        for leftover in (index, index.with_name(index.name + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        try:
            self.runner.run(["read-tree", base_tree], index=index)
            self._update_index(index, self._entries(files, autocrlf))
            return self._index_tree(index)
        finally:
            with contextlib.suppress(FileNotFoundError):
                index.unlink()

    def write_commit(self, tree: str, parents: Sequence[str], message: str,
                     options: CommitOptions) -> str:
        """A commit object of tree with parents (signed as the repository asks); no ref moves."""
        body = message if message.endswith("\n") else message + "\n"
        proc = self.runner.run_status(
            ["commit-tree", tree, *[a for p in parents for a in ("-p", p)],
             *(["-S"] if options.sign else [])],
            input=body.encode(), env=dict(options.identity or {}))
        if proc.returncode != 0:
            raise GitError(f"git could not write the commit: {first_line(proc.stderr)}"
                           + ("; check user.signingkey and gpg.format" if options.sign else ""))
        return proc.stdout.decode().strip()

    def _commit_tree(self, tree: str, old: str | None, options: CommitOptions,
                     merged: Sequence[str] = ()) -> str:
        args = ["commit-tree", tree, "-F", str(self.message_file)]
        if old:
            args += ["-p", old]
        for parent in merged:
            args += ["-p", parent]
        if options.sign:
            args.insert(1, "-S")
        proc = self.runner.run_status(args, env=dict(options.identity or {}))
        if proc.returncode != 0:
            if options.sign:
                raise GitError(
                    f"git could not sign the commit (commit.gpgsign is on): "
                    f"{first_line(proc.stderr)}; check user.signingkey and gpg.format"
                )
            raise GitError(f"git could not write the commit: {first_line(proc.stderr)}")
        return proc.stdout.decode().strip()

    def _move_ref(self, ref: str, old: str | None, new: str, reflog: str) -> None:
        proc = self.runner.run_status(["update-ref", "-m", reflog, ref, new, old or ZERO])
        if proc.returncode != 0:
            message = first_line(proc.stderr)
            raise ConcurrentUpdateError(
                f"branch '{ref.removeprefix('refs/heads/')}' moved or is locked ({message}); "
                "re-read the branch and retry"
            )

    # -- the journal and recovery ----------------------------------------------------------------

    def _write_journal(self, record: dict[str, object]) -> None:
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.journal)

    def recover(self) -> None:
        """Undo or finish the commit of an orch process that died holding the index lock."""
        if not is_stale(self.lock.path):
            return
        owner = lock_owner(self.lock.path)
        if owner is not None:
            wait_for_orphans(owner)
        # The private indexes are orch's alone, and their owner is dead: a lock a killed git
        # command left on one would fail every later commit.
        for private in (self.next_index, self.commit_index):
            with contextlib.suppress(FileNotFoundError):
                private.with_name(private.name + ".lock").unlink()
        try:
            record = json.loads(self.journal.read_text())
        except (OSError, ValueError):
            record = {}
        written = [(str(p), bool(t)) for p, t in record.get("written", [])]
        new = record.get("new")
        ref_moved = False
        if record.get("phase") == "ref" and new:
            head = self.runner.run_status(["rev-parse", "-q", "--verify", "HEAD"])
            current = head.stdout.decode().strip()
            ref_moved = current == new or self.runner.run_status(
                ["merge-base", "--is-ancestor", str(new), current or "HEAD"]
            ).returncode == 0
        if ref_moved and self.next_index.exists():
            os.replace(self.next_index, self.index)
        elif not ref_moved:
            self._undo(written)
        self.lock.held = True
        self._finish()


def _signature(path: Path) -> IndexSignature | None:
    """What tells one index file from another: inode, size and mtime can all repeat (a freed
    inode is reused at once, and mtime moves in clock ticks of several milliseconds), so the
    checksum git writes at the end of every index is part of it. None when there is no file,
    or no checksum (index.skipHash), so nothing can be taken for orch's own index."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            handle.seek(max(st.st_size - 20, 0))
            trailer = handle.read(20)
    except FileNotFoundError:
        return None
    if not trailer.strip(b"\0"):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, trailer)


def _raw_changes(out: bytes, statuses: bytes) -> list[tuple[str, str]]:
    """(path, blob before) of the `--raw -z` records whose status is one of statuses."""
    fields = out.split(b"\0")
    changes = []
    for meta, name in zip(fields[0::2], fields[1::2], strict=False):
        parts = meta.split(b" ")
        if len(parts) >= 5 and parts[4][:1] in [statuses[i:i + 1] for i in range(len(statuses))]:
            changes.append((name.decode("utf-8", "surrogateescape"), parts[2].decode()))
    return changes


def _remove_file(root: Path, path: str) -> None:
    target = root / path
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        target.unlink()
    parent = target.parent
    while parent != root:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
