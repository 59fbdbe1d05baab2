"""Running the git binary for the git adapter: one place for env, errors and streaming output."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from orchestrator.adapters.git_lock import PARENT_VARIABLE, parent_mark
from orchestrator.errors import GitError

# Config that would change the machine-readable output of the commands we parse.
_STABLE_CONFIG = (
    "-c",
    "log.showRoot=true",
    "-c",
    "log.showSignature=false",
    "-c",
    "color.ui=false",
    "-c",
    "core.quotePath=false",
    # What orch commits is what other workers build on once it is pushed: its objects and
    # refs reach the disk before git reports success (docs/git.md, "Durability").
    "-c",
    "core.fsync=committed",
)


def first_line(data: bytes | str) -> str:
    """The first non-empty line of a git message, without the 'fatal: ' prefix."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for line in text.splitlines():
        line = line.strip()
        if line:
            for prefix in ("fatal: ", "error: "):
                line = line.removeprefix(prefix)
            return line
    return "no message"


class GitRunner:
    """Runs git commands pinned to one repository (GIT_DIR and GIT_WORK_TREE set explicitly)."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self._pinned = {
            "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(root), "GIT_TERMINAL_PROMPT": "0"
        }

    @property
    def env(self) -> dict[str, str]:
        """The environment as it is now (identity and dates may change), pinned to this repo."""
        env = {**os.environ, **self._pinned, PARENT_VARIABLE: parent_mark()}
        env.pop("GIT_INDEX_FILE", None)
        return env

    def argv(self, args: Sequence[str]) -> list[str]:
        return ["git", *_STABLE_CONFIG, *args]

    def run(
        self,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        ok: Sequence[int] = (0,),
        index: Path | None = None,
    ) -> bytes:
        """Run git and return its stdout; GitError with git's own message on an unexpected exit.

        index names another index file (GIT_INDEX_FILE) for this one command."""
        proc = self.run_status(args, input=input, index=index)
        if proc.returncode not in ok:
            raise GitError(
                f"'git {args[0]}' failed: {first_line(proc.stderr)}; "
                "fix the repository state shown by 'git status' and retry"
            )
        return proc.stdout

    def run_status(
        self,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        index: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full = {**self.env, **(env or {})}
        if index is not None:
            full["GIT_INDEX_FILE"] = str(index)
        try:
            return subprocess.run(
                self.argv(args), input=input, capture_output=True, cwd=self.root, env=full
            )
        except OSError as exc:
            raise GitError(
                f"cannot run git: {exc}; install git 2.31 or newer and put it on PATH"
            ) from exc

    def popen(self, args: Sequence[str], *, stdin: bool = False) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                self.argv(args),
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.root,
                env=self.env,
            )
        except OSError as exc:
            raise GitError(
                f"cannot run git: {exc}; install git 2.31 or newer and put it on PATH"
            ) from exc

    def stream_z(self, args: Sequence[str]) -> Iterator[bytes]:
        """Yield the NUL-separated records of a git command's stdout as they arrive."""
        proc = self.popen(args)
        assert proc.stdout is not None
        rest = b""
        try:
            while chunk := os.read(proc.stdout.fileno(), 1 << 16):
                parts = (rest + chunk).split(b"\0")
                rest = parts.pop()
                yield from parts
            if rest:
                yield rest
            stderr = proc.stderr.read() if proc.stderr else b""
            if proc.wait() != 0:
                raise GitError(
                    f"'git {args[0]}' failed: {first_line(stderr)}; "
                    "check the repository with 'git fsck' and retry"
                )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
