"""git's own `index.lock`, held by orch the way git holds it, and recovered when orch died."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from orchestrator.errors import GitError

_MARK = b"orch-lock "
"""What orch writes into the lock file it holds: git never reads a lock file's content, and
git's own lock files hold index data ('DIRC...') or nothing, so the mark tells whose it is."""


def _start_time(pid: int) -> str:
    """The kernel's start time of a process (Linux), so a reused pid is not taken for ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19] if ")" in stat else ""


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or _start_time(pid) in ("", started)


def lock_owner(path: Path) -> tuple[int, str] | None:
    """(pid, start time) of the orch process that wrote this lock file; None if not orch's."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError:
        return None
    if not head.startswith(_MARK):
        return None
    fields = head[len(_MARK):].split()
    if not fields or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1].decode() if len(fields) > 1 else ""


PARENT_VARIABLE = "ORCH_GIT_PARENT"
"""Set on every git command orch runs to "pid start-time" of the orch process: git commands
outlive an orch that was killed, and recovery waits for them (see wait_for_orphans)."""


_parent_marks: dict[int, str] = {}


def parent_mark() -> str:
    """PARENT_VARIABLE's value for this process (kept per pid: a forked child is another)."""
    pid = os.getpid()
    mark = _parent_marks.get(pid)
    if mark is None:
        mark = _parent_marks[pid] = f"{pid} {_start_time(pid)}"
    return mark


def wait_for_orphans(owner: tuple[int, str], timeout_s: float = 10.0) -> None:
    """Wait until no git command started by the dead orch process `owner` is still running.

    A kill -9 of orch does not stop the git command it was waiting for: an `update-ref` or a
    `checkout-index` finishing after recovery undid the work tree would leave a commit whose
    files are not in the work tree. Such commands carry PARENT_VARIABLE in their environment.
    Without /proc (not Linux) there is nothing to look at and nothing is waited for."""
    mark = f"{PARENT_VARIABLE}={owner[0]} {owner[1]}".encode() + b"\0"
    deadline = time.monotonic() + timeout_s
    proc = Path("/proc")
    while time.monotonic() < deadline:
        running = False
        for entry in proc.glob("[0-9]*"):
            try:
                if mark in (entry / "environ").read_bytes():
                    running = True
                    break
            except OSError:
                continue
        if not running:
            return
        time.sleep(0.02)


def is_stale(path: Path) -> bool:
    """The lock file is orch's and the process that took it is gone."""
    owner = lock_owner(path)
    return owner is not None and owner != (os.getpid(), _start_time(os.getpid())) and not _alive(
        *owner
    )


class IndexLock:
    """`<git dir>/index.lock`, created exclusively as git does; a held lock is waited for.

    While it is held no git command of a person can change the index or commit (git refuses
    with 'index.lock exists'), which is what makes orch's index-then-ref update safe.
    """

    def __init__(self, index: Path, timeout_s: float = 30.0) -> None:
        self.path = index.with_name(index.name + ".lock")
        self.timeout_s = timeout_s
        self.held = False

    def acquire(self) -> None:
        mark = _MARK + f"{os.getpid()} {_start_time(os.getpid())}\n".encode()
        deadline = time.monotonic() + self.timeout_s
        delay = 0.002
        while True:
            try:
                self._create(mark)
            except FileExistsError:
                if is_stale(self.path):
                    raise StaleLockError(self.path) from None
                if time.monotonic() > deadline:
                    raise GitError(
                        f"{self.path} is held by another git process; wait for it to finish, "
                        "or remove the file if no git command is running"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
                continue
            except OSError as exc:
                raise GitError(f"cannot create {self.path}: {exc}; check permissions") from exc
            self.held = True
            return

    def _create(self, mark: bytes) -> None:
        """Create the lock file already holding the mark: written to a private file first and
        hard-linked into place (atomic, and refused when the lock exists), so a kill -9 can
        never leave an empty `index.lock` that no one can tell from git's own."""
        private = self.path.with_name(f"{self.path.name}.orch-{os.getpid()}")
        with open(private, "wb") as handle:
            handle.write(mark)
        try:
            os.link(private, self.path)
        except FileExistsError:
            raise
        except OSError:
            # A file system without hard links: exclusive create, then the mark.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                os.write(fd, mark)
            finally:
                os.close(fd)
        finally:
            with contextlib.suppress(FileNotFoundError):
                private.unlink()

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False


class StaleLockError(GitError):
    """Raised when the index lock belongs to an orch process that died: repair, then retry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} was left by an orch process that died")
