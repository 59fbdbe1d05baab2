"""Benchmark: appending event files as commits through the git adapter, empty repo vs 100k files.

Usage: .venv/bin/python bench/git_append.py [--quick] [--index-options] [--no-cache] [--workdir DIR]
Writes bench/results/git_append.json. The 100k-file repository is built with `git fast-import`
and cached under /tmp/orch-bench-cache (rebuilt when missing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.adapters.git import GitRepo  # noqa: E402

CACHE = Path("/tmp/orch-bench-cache")
RESULTS = Path(__file__).resolve().parent / "results" / "git_append.json"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PROJECTS = 100


def event_path(project: int, seq: int, kind: str = "note") -> str:
    ident = "".join(ALPHABET[(seq * 7 + project * 13 + i * 31) % 32] for i in range(26))
    return f".orchestrator/events/proj{project:03d}/{seq // 1000:04d}/{seq:08d}-{ident}.{kind}.yaml"


def event_body(project: int, seq: int) -> bytes:
    lines = [
        "schema: 1",
        f"project: proj{project:03d}",
        f"seq: {seq}",
        "type: note",
        "at: 2026-11-01T12:00:00.000000Z",
        "actor: agent/coder-1",
        "payload:",
        "  title: benchmark event",
        f"  text: {'lorem ipsum dolor sit amet ' * 16}",
        f"  refs: [task-{seq % 97}, task-{seq % 89}]",
    ]
    return ("\n".join(lines) + "\n").encode()


def git(repo: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, check=True)


def build_base(path: Path, files: int) -> None:
    """A checked-out repository holding `files` event files over 100 projects (fast-import)."""
    GitRepo.init(path).close()
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    per_commit = 1000
    for start in range(0, files, per_commit):
        out = [b"commit refs/heads/main\ncommitter bench <b@x> 1700000000 +0000\ndata 5\nbulk\n"]
        for k in range(start, min(files, start + per_commit)):
            project, seq = k % PROJECTS, k // PROJECTS
            data = event_body(project, seq)
            out.append(
                b"M 100644 inline %s\ndata %d\n%s\n"
                % (event_path(project, seq).encode(), len(data), data)
            )
        proc.stdin.write(b"".join(out))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    git(path, "reset", "-q", "--hard")


def fresh_repo(workdir: Path, name: str, files: int, use_cache: bool) -> Path:
    dst = workdir / name
    if not files:
        GitRepo.init(dst).close()
        return dst
    cached = CACHE / f"base-{files}"
    if not use_cache or not (cached / ".git" / "orch-bench-ready").exists():
        shutil.rmtree(cached, ignore_errors=True)
        t0 = time.perf_counter()
        build_base(cached, files)
        (cached / ".git" / "orch-bench-ready").touch()
        print(
            f"  built {files}-file repository in {time.perf_counter() - t0:.1f}s (cache: {cached})"
        )
    subprocess.run(["cp", "-a", str(cached), str(dst)], check=True)
    (dst / ".git" / "orch-bench-ready").unlink()
    git(dst, "update-index", "-q", "--refresh")  # the copy changed ctimes; refresh once
    return dst


def run_scenario(
    repo_path: Path, label: str, commits: int, per_commit: int, wait: bool, base_seq: int
) -> dict[str, Any]:
    """Append commits x per_commit new event files (seq from base_seq, far from the prebuilt)."""
    repo = GitRepo.open(repo_path)
    latencies: list[float] = []
    n = 0
    t0 = time.perf_counter()
    for c in range(commits):
        files = {}
        for _ in range(per_commit):
            project, seq = n % 4, base_seq + n
            files[event_path(project, seq)] = event_body(project, seq)
            n += 1
        t = time.perf_counter()
        repo.commit_files(files, f"event batch {c}\n\nOrch-Event: bench-{c}\n")
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    repo.close()
    t = time.perf_counter()
    status = git(repo_path, "status", "--porcelain", "--untracked-files=all").stdout
    status_s = time.perf_counter() - t
    result = {
        "repo": label,
        "mode": f"{per_commit} file(s)/commit",
        "commits": commits,
        "events": n,
        "seconds": round(elapsed, 3),
        "commits_per_s": round(commits / elapsed, 1),
        "events_per_s": round(n / elapsed, 1),
        "commit_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "commit_p95_ms": round(sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000, 2),
        "git_status_clean": status == b"",
        "git_status_seconds": round(status_s, 3),
    }
    print(
        f"  {label:>5} | {result['mode']:<45} | {commits:5d} commits {n:6d} events | "
        f"{result['commits_per_s']:7.1f} commits/s {result['events_per_s']:8.1f} events/s | "
        f"p50 {result['commit_p50_ms']:6.2f} ms p95 {result['commit_p95_ms']:6.2f} ms | "
        f"status {'clean' if status == b'' else 'DIRTY'}"
    )
    if status:
        print(status.decode()[:500])
    return result


def index_options(workdir: Path, files: int, use_cache: bool) -> list[dict[str, Any]]:
    """Cost of one `git update-index --index-info` call (1 entry) under several index formats."""
    results = []
    variants = {
        "v2": ["--no-split-index", "--index-version", "2"],
        "v4": ["--no-split-index", "--index-version", "4"],
        "v2+split": ["--split-index", "--index-version", "2"],
        "v4+split": ["--split-index", "--index-version", "4"],
    }
    repo = fresh_repo(workdir, "idx", files, use_cache)
    blob = git(repo, "hash-object", "-w", "--stdin", input=b"x\n").stdout.decode().strip()
    for name, args in variants.items():
        git(repo, "config", "core.splitIndex", "true" if "split" in name else "false")
        git(repo, "update-index", *args)
        times = []
        for i in range(30):
            line = f"100644 {blob}\tidx/{name}/{i:04d}.yaml\0".encode()
            t = time.perf_counter()
            git(repo, "update-index", "-z", "--index-info", input=line)
            times.append(time.perf_counter() - t)
        size = (repo / ".git" / "index").stat().st_size  # what each update rewrites
        ms = statistics.median(times) * 1000
        print(
            f"  index {name:<9} update-index (1 entry) median {ms:6.1f} ms; "
            f"rewrites {size / 1e6:.2f} MB of .git/index per update"
        )
        results.append(
            {"format": name, "update_index_ms": round(ms, 2), "index_file_mb": round(size / 1e6, 3)}
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller run (20k-file base, fewer commits)"
    )
    parser.add_argument("--index-options", action="store_true", help="also time index formats")
    parser.add_argument("--no-cache", action="store_true", help="rebuild the big repository")
    parser.add_argument("--workdir", help="where to build the test repositories (default: TMPDIR)")
    opts = parser.parse_args()
    big = 20_000 if opts.quick else 100_000
    single, batches = (100, 10) if opts.quick else (500, 50)

    with tempfile.TemporaryDirectory(prefix="orch-bench-", dir=opts.workdir) as tmp:
        workdir = Path(tmp)
        home = workdir / "home"
        home.mkdir()
        (home / "gitconfig").write_text("")
        os.environ.update(
            HOME=str(home),
            GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="bench",
            GIT_AUTHOR_EMAIL="bench@localhost",
            GIT_COMMITTER_NAME="bench",
            GIT_COMMITTER_EMAIL="bench@localhost",
        )
        version = git(workdir, "--version").stdout.decode().strip()
        print(f"{version}; {os.cpu_count()} cpus; python {platform.python_version()}")
        scenarios = []
        fsck_ok: dict[str, bool] = {}
        plan = ((single, 1, True), (batches, 100, True))
        for label, files in (("empty", 0), (f"{big // 1000}k", big)):
            # one repository per size; each scenario appends to its own range of seq numbers
            path = fresh_repo(workdir, label, files, not opts.no_cache)
            for number, (commits, per_commit, wait) in enumerate(plan):
                start = 1_000_000 * (number + 1)
                scenarios.append(run_scenario(path, label, commits, per_commit, wait, start))
            fsck = subprocess.run(["git", "fsck", "--no-progress"], cwd=path, capture_output=True)
            tracked = git(path, "ls-files", "-z").stdout.count(b"\0")
            print(
                f"  {label:>5} | git fsck {'ok' if fsck.returncode == 0 else 'FAILED'}; "
                f"{tracked} files"
            )
            fsck_ok[label] = fsck.returncode == 0
            shutil.rmtree(path)
        report: dict[str, Any] = {
            "git": version,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "quick": opts.quick,
            "workdir": str(Path(tmp).parent),
            "scenarios": scenarios,
            "fsck_ok": fsck_ok,
        }
        if opts.index_options:
            report["index_options"] = index_options(workdir, big, not opts.no_cache)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
