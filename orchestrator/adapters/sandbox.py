"""The one door through which model-written code runs: bubblewrap (no network, the host
read-only, a writable copy of the tree, time/memory/process limits), or unconfined when the
config says `qa.sandbox: none`."""

from __future__ import annotations

import contextlib
import os
import posixpath
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

INSIDE = "/tmp/orch-tree"
"""Where the tree's copy appears inside the sandbox (on a private tmpfs)."""
FIRST_UID, UID_SPAN = 200_000, 60_000
"""Where the uids of runs started by root come from (unused by any account)."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int
    max_processes: int


@dataclass(frozen=True)
class Run:
    exit_code: int | None
    """None when the run was stopped for taking longer than its time limit."""
    output: str
    """The tail of stdout and stderr together."""

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


class Sandbox(Protocol):
    name: str

    def run(self, command: str, tree: Path, cwd: str, limits: Limits,
            env: Mapping[str, str], max_output: int) -> Run:
        """Run a shell command in `tree/cwd`; the caller owns `tree` (a throwaway copy)."""
        ...


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: no secret of the host's reaches generated code."""
    path = os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent),
                                          *os.environ.get("PATH", "/usr/bin:/bin").split(":")]))
    return {"PATH": path, "HOME": "/tmp/orch-home", "LANG": "C.UTF-8", "CI": "true",
            "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": "/tmp",
            "CHECKPOINT_DISABLE": "1", **extra}


class Bubblewrap:
    name = "bwrap"

    def __init__(self, bwrap: str) -> None:
        self.bwrap = bwrap

    def argv(self, command: str, cwd: str, limits: Limits, env: Mapping[str, str],
             tree: Path | None) -> list[str]:
        as_root = os.geteuid() == 0
        argv = [self.bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--dir", "/tmp/orch-home"]
        if not as_root:
            argv[1:1] = ["--unshare-user"]
        argv += _reachable_tools() if as_root else []
        if tree is not None:
            argv += ["--bind", str(tree), INSIDE, "--chdir", posixpath.normpath(f"{INSIDE}/{cwd}")]
        argv += ["--clearenv"]
        for key, value in base_env(env).items():
            argv += ["--setenv", key, value]
        # Root is exempt from the process limit, so the code runs as a fresh unprivileged uid
        # of its own: the limit then counts this run's processes alone, not a previous one's
        # that the kernel is still tearing down.
        uid = str(secrets.randbelow(UID_SPAN) + FIRST_UID)
        drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all"] if as_root else []
        memory = limits.memory_mb * 1024 * 1024
        return argv + ["--", *drop, "prlimit", f"--nproc={limits.max_processes}",
                       f"--data={memory}", f"--fsize={memory}",
                       f"--cpu={int(limits.timeout_s) + 5}", "--", "sh", "-c", command]

    def run(self, command: str, tree: Path, cwd: str, limits: Limits,
            env: Mapping[str, str], max_output: int) -> Run:
        if os.geteuid() == 0:
            _open_to_nobody(tree)
        return _execute(self.argv(command, cwd, limits, env, tree), None, None, limits,
                        max_output)


class Unconfined:
    """`qa.sandbox: none`: the host as it is, with only a time limit and a clean environment."""

    name = "none"

    def run(self, command: str, tree: Path, cwd: str, limits: Limits,
            env: Mapping[str, str], max_output: int) -> Run:
        return _execute(["sh", "-c", command], tree / cwd, base_env(env), limits, max_output)


class NoSandbox(Exception):
    """No sandbox can be had here: generated code is not run."""


def open_sandbox(kind: str, search_path: str | None = None) -> Sandbox:
    """The configured sandbox, or NoSandbox saying why and what to do. `search_path` is
    where to look for bwrap (default: PATH)."""
    if kind == "none":
        return Unconfined()
    found = shutil.which("bwrap", path=search_path)
    problem = _bwrap_problem(found)
    if problem or not found:
        raise NoSandbox(f"{problem}; install bubblewrap (apt-get install bubblewrap) or set "
                        f"qa.sandbox: none to run generated code unconfined")
    return Bubblewrap(found)


@cache
def _bwrap_problem(found: str | None) -> str:
    """Empty when bubblewrap works here; probed once per process by running `true` in it."""
    if not found:
        return "no sandbox: bwrap is not installed"
    argv = Bubblewrap(found).argv("true", ".", Limits(10, 256, 64), {}, None)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no sandbox: bwrap does not start ({exc})"
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return f"no sandbox: bwrap does not work here ({reason[:200]})"
    return ""


def _reachable_tools() -> list[str]:
    """Mounts that let nobody reach this interpreter (and the tools beside it) when they live
    under root's private home: a fresh /root holding only those folders, read-only."""
    home = Path("/root")
    wanted = {Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix, sys.executable)}
    inside = sorted({home / p.relative_to(home).parts[0] for p in wanted
                     if p.is_relative_to(home) and p != home})
    if not inside or home.stat().st_mode & 0o001:
        return []
    argv = ["--tmpfs", str(home)]
    for folder in inside:
        argv += ["--ro-bind", str(folder), str(folder)]
    return argv


def _open_to_nobody(tree: Path) -> None:
    # A throwaway copy: nobody (who runs the code) must reach and write it.
    tree.parent.chmod(0o711)
    tree.chmod(0o777)
    for folder, dirs, files in os.walk(tree):
        for name in dirs:
            Path(folder, name).chmod(0o777)
        for name in files:
            Path(folder, name).chmod(0o666)


def _execute(argv: list[str], cwd: Path | None, env: dict[str, str] | None, limits: Limits,
             max_output: int) -> Run:
    # Output goes to a file, not a pipe: a test that prints forever cannot fill our memory,
    # and the file-size limit bounds it on disk.
    with tempfile.TemporaryFile() as sink:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            code = None
        size = sink.seek(0, os.SEEK_END)
        sink.seek(max(0, size - max_output))
        tail = sink.read().decode("utf-8", "replace")
    if size > max_output:
        tail = "…" + tail.split("\n", 1)[-1]
    return Run(exit_code=code, output=tail)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
