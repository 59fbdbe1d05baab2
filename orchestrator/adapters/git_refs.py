"""Reading refs and moving a branch with a compare-and-swap, using git's own lock-file protocol."""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.errors import ConcurrentUpdateError, GitError

ZERO_SHA = "0" * 40
_LOCK_WAIT_SECONDS = 1.0


def short_ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


class RefStore:
    """The files ref backend: loose refs, packed-refs, `<ref>.lock` and reflogs."""

    def __init__(self, git_dir: Path, common_dir: Path) -> None:
        self._git_dir = git_dir
        self._common = common_dir
        self._packed_stat: tuple[int, int, int] | None = None
        self._packed: dict[str, str] = {}

    def head_ref(self) -> str | None:
        """The ref HEAD points to ('refs/heads/main'), or None when HEAD is detached."""
        try:
            data = (self._git_dir / "HEAD").read_text("utf-8").strip()
        except OSError as exc:
            raise GitError(
                f"cannot read HEAD: {exc}; run 'git status' to check the repository"
            ) from exc
        return data[5:].strip() if data.startswith("ref: ") else None

    def read_head(self) -> str | None:
        ref = self.head_ref()
        if ref is not None:
            return self.read_ref(ref)
        return (self._git_dir / "HEAD").read_text("utf-8").strip()

    def _ref_file(self, ref: str) -> Path:
        per_worktree = ref.startswith(("refs/bisect/", "refs/worktree/", "refs/rewritten/"))
        return (self._git_dir if per_worktree else self._common) / ref

    def read_ref(self, ref: str) -> str | None:
        """The sha a ref holds: the loose file, else packed-refs; None when it does not exist."""
        try:
            data = self._ref_file(ref).read_text("utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self._read_packed().get(ref)
        except OSError as exc:
            raise GitError(
                f"cannot read {ref}: {exc}; run 'git status' to check the repository"
            ) from exc
        if data.startswith("ref: "):
            raise GitError(f"{ref} is a symbolic ref; check out a real branch with 'git switch'")
        if len(data) != 40:
            raise GitError(
                f"{ref} holds '{data[:60]}', not a commit id; repair it with 'git update-ref'"
            )
        return data

    def _read_packed(self) -> dict[str, str]:
        path = self._common / "packed-refs"
        try:
            st = path.stat()
        except FileNotFoundError:
            self._packed_stat, self._packed = None, {}
            return self._packed
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key != self._packed_stat:
            packed: dict[str, str] = {}
            for line in path.read_text("utf-8").splitlines():
                if line and line[0] not in "#^":
                    sha, _, name = line.partition(" ")
                    packed[name] = sha
            self._packed_stat, self._packed = key, packed
        return self._packed

    def cas(
        self, ref: str, old: str | None, new: str, ident: bytes, message: str, log: bool
    ) -> None:
        """Move ref from old (None: must not exist) to new, or raise ConcurrentUpdateError.

        Git's protocol: create `<ref>.lock` exclusively, check the current value under the lock,
        write the new value into the lock, append the reflogs, rename the lock over the ref.
        """
        path = self._ref_file(ref)
        lock = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GitError(f"cannot create {path.parent}: {exc}; check permissions") from exc
        fd = self._acquire(lock, ref)
        try:
            current = self.read_ref(ref)
            if current != old:
                raise ConcurrentUpdateError(
                    f"branch '{short_ref(ref)}' moved: expected {old or 'no commit'}, found "
                    f"{current or 'no commit'}; re-read the branch and retry"
                )
            os.write(fd, new.encode() + b"\n")
            os.close(fd)
            fd = -1
            if log:
                line = (
                    f"{old or ZERO_SHA} {new} ".encode() + ident + b"\t" + message.encode() + b"\n"
                )
                self._append_log(self._common / "logs" / ref, line)
                if self.head_ref() == ref:
                    self._append_log(self._git_dir / "logs" / "HEAD", line)
            os.replace(lock, path)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            lock.unlink(missing_ok=True)
            raise

    def _acquire(self, lock: Path, ref: str) -> int:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        delay = 0.001
        while True:
            try:
                return os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError as exc:
                if time.monotonic() >= deadline:
                    raise ConcurrentUpdateError(
                        f"branch '{short_ref(ref)}' is locked by another git process ({lock}); "
                        "retry, or delete the lock file if no git process is running"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                raise GitError(f"cannot create {lock}: {exc}; check permissions") from exc

    @staticmethod
    def _append_log(path: Path, line: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise GitError(f"cannot append to reflog {path}: {exc}; check permissions") from exc
