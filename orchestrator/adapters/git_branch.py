"""Branches other than the checked-out one: a task's branch is cut, committed on and merged
without touching the person's index or work tree (git plumbing in an index of its own), and
merged into the checked-out branch through the index-first committer (hooks, signing)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.adapters.git_cmd import GitRunner, first_line
from orchestrator.adapters.git_commit import ZERO, CommitOptions, IndexCommitter, check_path
from orchestrator.errors import ConcurrentUpdateError, GitError

if TYPE_CHECKING:
    from orchestrator.adapters.git import GitRepo

PARKED = "refs/orch/abandoned/"
"""Where an abandoned (never merged) branch's commits are kept once the branch is deleted."""
MERGED_ELSEWHERE = "refs/orch/merged/"
"""Where a branch the host merged by squash or rebase is kept: its commits are in no
ancestor of the main branch here, so deleting the ref alone would make them unreachable."""


class MergeConflictError(GitError):
    """The branch cannot be merged without dropping one side's change in `paths`."""

    def __init__(self, message: str, paths: Sequence[str]) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


@dataclass(frozen=True)
class MergeCheck:
    """What merging `theirs` into `ours` gives: the merged tree, or the conflicting paths
    (the tree then holds git's conflict markers in them)."""

    tree: str
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts


@dataclass(frozen=True)
class MergePlan:
    """A merge worked out in memory: on ours, what theirs brings (path -> merged bytes, None
    for a deletion), or the paths where it conflicts."""

    ours: str
    theirs: str
    conflicts: tuple[str, ...]
    changes: Mapping[str, bytes | None]


@dataclass(frozen=True)
class DiffStat:
    files: tuple[str, ...]
    added: int
    removed: int


def branch_ref(name: str) -> str:
    check_path(name)
    return f"refs/heads/{name}"


class Branches:
    def __init__(self, runner: GitRunner, committer: IndexCommitter,
                 options: Callable[[], CommitOptions], repo: GitRepo) -> None:
        self._runner = runner
        self._committer = committer
        self._options = options
        self._repo = repo

    # -- reading ---------------------------------------------------------------------------------

    def head(self, name: str) -> str | None:
        """The commit the branch points to; None when there is no such branch."""
        proc = self._runner.run_status(
            ["rev-parse", "-q", "--verify", f"{branch_ref(name)}^{{commit}}"])
        return proc.stdout.decode().strip() or None if proc.returncode == 0 else None

    def names(self, prefix: str) -> dict[str, str]:
        """Every branch under prefix (`orch/`), name -> sha."""
        out = self._runner.run(["for-each-ref", "--format=%(refname) %(objectname)",
                                f"refs/heads/{prefix.strip('/')}/"])
        found = {}
        for line in out.decode().splitlines():
            ref, _, sha = line.partition(" ")
            found[ref.removeprefix("refs/heads/")] = sha
        return found

    def check_merge(self, ours: str, theirs: str) -> MergeCheck:
        """Merge theirs into ours in memory (`git merge-tree --write-tree`): nothing moves."""
        proc = self._runner.run_status(["merge-tree", "--write-tree", "--name-only",
                                        "--no-messages", "-z", ours, theirs])
        if proc.returncode not in (0, 1):
            raise GitError(f"cannot merge {theirs[:12]} into {ours[:12]}: "
                           f"{first_line(proc.stderr)}; git 2.38 or newer is needed")
        fields = [f for f in proc.stdout.split(b"\0") if f]
        if not fields:
            raise GitError("'git merge-tree' printed no tree; git 2.38 or newer is needed")
        paths = dict.fromkeys(f.decode("utf-8", "surrogateescape") for f in fields[1:])
        return MergeCheck(tree=fields[0].decode(), conflicts=tuple(paths))

    def stat(self, base: str, head: str) -> DiffStat:
        """What head changes since it left base (their merge base): files and lines."""
        since = self._repo.merge_base(base, head) or base
        out = self._runner.run(["diff", "--numstat", "-z", "--no-renames", since, head])
        files, added, removed = [], 0, 0
        for record in out.split(b"\0"):
            parts = record.split(b"\t", 2)
            if len(parts) != 3:
                continue
            files.append(parts[2].decode("utf-8", "surrogateescape"))
            added += int(parts[0]) if parts[0].isdigit() else 0  # '-' for a binary file
            removed += int(parts[1]) if parts[1].isdigit() else 0
        return DiffStat(files=tuple(files), added=added, removed=removed)

    # -- writing ---------------------------------------------------------------------------------

    def cut(self, name: str, start: str) -> str:
        """The branch, created at start unless it exists (then left where it is)."""
        current = self.head(name)
        if current is not None:
            return current
        proc = self._runner.run_status(["update-ref", "-m", f"branch: cut from {start[:12]}",
                                        branch_ref(name), start, ZERO])
        if proc.returncode != 0:
            current = self.head(name)  # another process cut it first: theirs stands
            if current is None:
                raise GitError(f"cannot create branch {name}: {first_line(proc.stderr)}")
            return current
        return start

    def follow(self, name: str, target: str) -> str:
        """The branch, brought to target (where the log says the task's last attempt left
        it, maybe in another clone): cut there when absent, moved forward when it is behind,
        kept when it is ahead (this clone's own unpushed commits on it). A branch with
        commits target does not hold is kept under refs/orch/abandoned/ first, never lost."""
        current = self.head(name)
        if current is None or current == target:
            return self.cut(name, target)
        if self._repo.is_ancestor(target, current):
            return current
        if not self._repo.is_ancestor(current, target):
            self.park(name)
            return self.cut(name, target)
        self._runner.run(["update-ref", "-m", f"branch: forward to {target[:12]}",
                          branch_ref(name), target, current])
        return target

    def commit(self, name: str, files: Mapping[str, bytes | None], message: str, *,
               start: str, reconcile_with: str | None = None,
               resolves: Sequence[str] = ()) -> str:
        """Commit files on the branch (cut from start when absent); return the commit.

        With reconcile_with (the main branch's commit) and `resolves` (the paths the branch
        was sent back for), the commit also merges reconcile_with when every conflict is in a
        path these files write again: the rework's files are the resolution, so the branch
        then merges into main cleanly. A conflict the files do not answer stays for the
        next merge to find; nothing is ever resolved by taking one side.
        """
        for attempt in range(3):
            old = self.cut(name, start)
            parents = [old]
            base = f"{old}^{{tree}}"
            if reconcile_with and not self._repo.is_ancestor(reconcile_with, old):
                check = self.check_merge(old, reconcile_with)
                answered = set(files) & set(resolves)
                if check.conflicts and set(check.conflicts) <= answered:
                    base, parents = check.tree, [old, reconcile_with]
            tree = self._committer.tree_with(base, files, self._options().autocrlf)
            new = self._committer.write_commit(tree, parents, message, self._options())
            proc = self._runner.run_status(["update-ref", "-m", f"commit: {message[:60]}",
                                            branch_ref(name), new, old])
            if proc.returncode == 0:
                return new
            if attempt == 2:
                raise ConcurrentUpdateError(
                    f"branch '{name}' moved while orch committed on it "
                    f"({first_line(proc.stderr)}); retry")
        raise AssertionError("unreachable")

    def plan_merge(self, ours: str, theirs: str) -> MergePlan:
        """What merging theirs into ours would change (the files, with their merged bytes),
        or the conflicting paths; nothing moves."""
        check = self.check_merge(ours, theirs)
        changes = self._repo.changed_files(ours, check.tree) if check.clean else {}
        return MergePlan(ours=ours, theirs=theirs, conflicts=check.conflicts, changes=changes)

    def merge_into_current(self, plan: MergePlan | str, files: Mapping[str, bytes | None],
                           message: str) -> str:
        """Merge commit of plan.theirs into the checked-out branch, with files (orch's
        events) in the same commit; MergeConflictError names the paths when it cannot be
        clean. A plan made on another commit than the branch's is made again.

        Through the index-first committer: the person's index and work tree get the merged
        files only, hooks run, the commit is signed when asked."""
        theirs = plan if isinstance(plan, str) else plan.theirs
        plans = [] if isinstance(plan, str) else [plan]

        def changes(ours: str | None) -> Mapping[str, bytes | None]:
            if ours is None:
                raise GitError("the branch has no commit to merge into; commit first")
            if not plans or plans[-1].ours != ours:
                plans.append(self.plan_merge(ours, theirs))
            if plans[-1].conflicts:
                raise MergeConflictError(
                    f"{theirs[:12]} conflicts with {ours[:12]} in "
                    + ", ".join(plans[-1].conflicts), plans[-1].conflicts)
            return plans[-1].changes

        return self._repo.commit_files(files, message, merge_parents=(theirs,),
                                       merged_files=changes)

    def delete_merged(self, name: str, expected: str) -> bool:
        """Delete a branch orch has just merged (so every commit of it is held) if it is
        still at expected."""
        proc = self._runner.run_status(["update-ref", "-d", branch_ref(name), expected])
        return proc.returncode == 0

    def delete(self, name: str, expected: str) -> bool:
        """Delete the branch if it is at expected and merged into the checked-out branch;
        never a branch with commits nothing else holds. Returns whether it was deleted."""
        head = self._repo.head()
        if self.head(name) != expected or head is None or not self._repo.is_ancestor(
                expected, head):
            return False
        proc = self._runner.run_status(["update-ref", "-d", branch_ref(name), expected])
        return proc.returncode == 0

    def park(self, name: str, under: str = PARKED) -> str | None:
        """Move a branch under `under` (refs/orch/abandoned/): no longer a branch, its commits
        still reachable; returns that ref, or None when there was no branch."""
        sha = self.head(name)
        if sha is None:
            return None
        kept = under + name.removeprefix("orch/")
        self._runner.run(["update-ref", kept, sha])
        self._runner.run(["update-ref", "-d", branch_ref(name), sha])
        return kept
