"""The OpenAI-compatible provider end to end: `orch run` against a local fake server.

Every run is the real `orch` command in a temporary repository, talking HTTP through the real
`openai` client to `FakeOpenAI`, whose answers come from `ScriptedTeam` (the offline team's
answers, so a whole project can complete). Covered: a whole project, a JSON-mode-only server,
the API key never leaking (a canary), faults failing closed with an alert, a 429 retried,
the token budget stopping a run, and replaying a recorded run in a fresh repository.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_orch
from tests.support.fake_openai import FakeOpenAI, Received, Reply
from tests.support.sandbox import NO_CODE_CHECKS
from tests.support.scripted_team import ScriptedTeam

PROJECT = "task-tracker"
SPEC = f"specs/{PROJECT}.md"
MAX_OUTPUT_TOKENS = 2048
"""Above the longest offline answer (~1,750 tokens): no answer is cut at the limit."""
RUN_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------------------------
# Helpers


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def new_repo(path: Path, base_url: str, llm: dict[str, Any] | None = None,
             **top: Any) -> Path:
    """`orch init`, the example spec and a config for the fake server, all committed."""
    path.mkdir(parents=True, exist_ok=True)
    run_orch(path, "init")
    spec = resources.files("orchestrator.examples").joinpath(f"{PROJECT}.md").read_bytes()
    (path / SPEC).write_bytes(spec)
    config = {
        "max_decomposition_depth": 0,
        "parallelism": 4,
        "llm": {
            "provider": "openai", "base_url": base_url, "model": "test-model",
            "timeout_s": 5, "max_retries": 2, "max_output_tokens": MAX_OUTPUT_TOKENS,
            "offline": {"qa_fail_rate": 0.0, "blocker_rate": 0.0,
                        "dependency_request_rate": 0.0, "latency_ms": 0},
            **(llm or {}),
        },
        "qa": NO_CODE_CHECKS,
        **top,
    }
    (path / ".orchestrator" / "config.yaml").write_text(json.dumps(config, indent=2) + "\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "test: spec and config")
    return path


def orch_run(repo: Path, *extra: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    proc = run_orch(repo, "run", *extra, SPEC, check=False, timeout=RUN_TIMEOUT_S, env=env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def project_view(repo: Path) -> dict[str, Any]:
    views = json.loads(run_orch(repo, "status", "--json").stdout)["projects"]
    [view] = [v for v in views if v["id"] == PROJECT]
    return dict(view)


def assert_verifies_clean(repo: Path) -> None:
    proc = run_orch(repo, "verify", "--json", check=False)
    assert json.loads(proc.stdout) == {"ok": True, "findings": [], "forced": []}, proc.stdout
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def transcripts(repo: Path) -> list[dict[str, Any]]:
    folder = repo / ".orchestrator" / "transcripts" / PROJECT
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def artifacts(repo: Path) -> dict[str, bytes]:
    root = repo / "project" / PROJECT
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def outcome(view: dict[str, Any]) -> dict[str, Any]:
    return {"status": view["status"],
            "tasks": {t["id"]: t["status"] for t in view["tasks"]},
            "modules": {m["name"]: m["status"] for m in view["modules"]}}


def canary_key() -> str:
    return f"sk-canary-{secrets.token_hex(16)}"


def assert_nowhere(repo: Path, secret: str, *outputs: str) -> None:
    """The secret is in no command output, no file (.git included), no commit, no object."""
    for text in outputs:
        assert secret not in text
    files = [p for p in repo.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "config.yaml" for p in files)
    leaks = [p for p in files if secret.encode() in p.read_bytes()]
    assert leaks == [], leaks
    history = git(repo, "log", "-p", "--all")
    assert "FR-1" in history and secret not in history
    objects = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo,
                             check=True, capture_output=True).stdout
    assert b"FR-1" in objects and secret.encode() not in objects


def schema_of(request: dict[str, Any]) -> str:
    rf = request.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return str(rf["json_schema"]["name"])
    system = " ".join(m.get("content", "") for m in request.get("messages", [])
                      if m.get("role") == "system")
    return next((name for name in ("SpecReviewOutput", "QaOutput", "DevOutput")
                 if f"({name})" in system), "")


def only_for(schema: str, answer: str | Reply, team: ScriptedTeam
             ) -> Callable[[dict[str, Any]], str | Reply | None]:
    """A responder: `answer` to every request for `schema`, the team's answer to the rest."""
    def respond(request: dict[str, Any]) -> str | Reply | None:
        return answer if schema_of(request) == schema else team(request)

    return respond


# --------------------------------------------------------------------------------------------
# A recorded run, shared: a whole project through the fake server, with a canary key


@dataclass
class Recorded:
    repo: Path
    proc: subprocess.CompletedProcess[str]
    requests: list[Received]
    team: ScriptedTeam
    key: str
    base_url: str


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Run once; the server is stopped when the tests get it."""
    team = ScriptedTeam()
    key = canary_key()
    with FakeOpenAI(responder=team) as server:
        repo = new_repo(tmp_path_factory.mktemp("recorded"), server.base_url)
        proc = orch_run(repo, env={"OPENAI_API_KEY": key})
        assert server.responder_errors == []
        requests, base_url = list(server.requests), server.base_url
    return Recorded(repo, proc, requests, team, key, base_url)


# --------------------------------------------------------------------------------------------
# 1. A whole project


def test_a_whole_project_completes_through_the_fake_server(recorded: Recorded) -> None:
    assert recorded.proc.returncode == 0, recorded.proc.stdout + recorded.proc.stderr
    assert f"{PROJECT}: completed" in recorded.proc.stdout
    view = project_view(recorded.repo)
    assert view["status"] == "completed"
    assert view["alerts"] == []
    assert {t["status"] for t in view["tasks"]} == {"passed"}
    assert {m["status"] for m in view["modules"]} == {"completed"}
    # Every request went to the chat completions endpoint with the strict schema.
    assert {r.path for r in recorded.requests} == {"/v1/chat/completions"}
    assert all(r.body["model"] == "test-model" for r in recorded.requests)
    assert all((r.response_format or {}).get("type") == "json_schema"
               for r in recorded.requests)
    # Usage: what the server reported, summed into the status and carried by the events.
    usage = view["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["calls"] == len(recorded.requests) == len(recorded.team.calls)
    assert usage["prompt_tokens"] == sum(c.prompt_tokens for c in recorded.team.calls)
    assert usage["completion_tokens"] == sum(c.completion_tokens for c in recorded.team.calls)
    events = json.loads(run_orch(recorded.repo, "log", PROJECT, "--json").stdout)
    with_usage = [e for e in events if e.get("usage")]
    assert len(with_usage) == len(recorded.requests)
    assert {e["usage"]["model"] for e in with_usage} == {"test-model"}
    # Transcripts: one per call, committed with the events they produced.
    records = transcripts(recorded.repo)
    assert len(records) == len(recorded.requests)
    assert {t["model"] for t in records} == {"test-model"}
    assert {t["response_format"] for t in records} == {"json_schema"}
    assert {t["role"] for t in records} == {"cto", "engineer", "pm", "dev", "qa", "devops"}
    tracked = git(recorded.repo, "ls-files", f".orchestrator/transcripts/{PROJECT}").splitlines()
    assert len(tracked) == len(records)
    linked = {link["ref"] for e in events for link in e.get("links", [])
              if link["kind"] == "transcript"}
    assert linked == set(tracked)
    assert_verifies_clean(recorded.repo)


# --------------------------------------------------------------------------------------------
# 2. A server that only knows JSON mode


def test_a_json_mode_only_server_also_completes(tmp_path: Path) -> None:
    team = ScriptedTeam()
    with FakeOpenAI(responder=team, json_schema_supported=False) as server:
        repo = new_repo(tmp_path / "repo", server.base_url)
        proc = orch_run(repo)
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project_view(repo)["status"] == "completed"
    kinds = [(r.response_format or {}).get("type") for r in requests]
    assert kinds[0] == "json_schema"  # tried first, refused with a 400 ...
    # ... then JSON mode with the schema beside it (and in the prompt), settled for the run
    assert set(kinds[1:]) == {"json_object"}
    assert all("schema" in (r.response_format or {}) for r in requests[1:])
    assert len(team.calls) == kinds.count("json_object")
    assert {t["response_format"] for t in transcripts(repo)} == {"json_object_schema"}
    assert_verifies_clean(repo)


# --------------------------------------------------------------------------------------------
# 3. The API key never leaks


def test_the_key_is_sent_and_leaks_nowhere_after_a_successful_run(recorded: Recorded) -> None:
    assert recorded.requests
    assert all(r.headers.get("authorization") == f"Bearer {recorded.key}"
               for r in recorded.requests)
    assert all(recorded.key not in json.dumps(r.body) for r in recorded.requests)
    assert_nowhere(recorded.repo, recorded.key, recorded.proc.stdout, recorded.proc.stderr)


def test_the_key_leaks_nowhere_when_the_model_echoes_it(tmp_path: Path) -> None:
    """A model that repeats the key in its answer: the stored output has `***` instead. And a
    deploy command that prints the key's variable: it is not in the deploy's environment."""
    team = ScriptedTeam()
    key = canary_key()

    def echo_key(request: dict[str, Any]) -> str | Reply | None:
        answer = team(request)
        if schema_of(request) != "SpecReviewOutput":
            return answer
        assert isinstance(answer, Reply) and answer.content is not None
        review = json.loads(answer.content)
        review["understood_spec_markdown"] += f"\n\nCalled with the key {key}.\n"
        review["open_questions"] = [f"Is {key} the production key?"]
        return Reply(content=json.dumps(review), usage=answer.usage)

    with FakeOpenAI(responder=echo_key) as server:
        repo = new_repo(tmp_path / "repo", server.base_url, deploy={
            "command": 'echo "deploy env key=[${OPENAI_API_KEY:-unset}]"', "timeout_s": 10})
        proc = orch_run(repo, env={"OPENAI_API_KEY": key})
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project_view(repo)["status"] == "completed"
    assert all(r.headers.get("authorization") == f"Bearer {key}" for r in requests)
    review = (repo / "project" / PROJECT / "docs" / "spec-review.md").read_text()
    assert "Called with the key ***." in review
    deployed = json.loads(run_orch(repo, "log", PROJECT, "--json", "--type",
                                   "devops.deployed").stdout)
    details = {t["detail"] for e in deployed for t in e["payload"]["smoke_tests"]
               if t["name"] == "deploy command"}
    assert details == {"exit 0: deploy env key=[unset]"}
    assert_nowhere(repo, key, proc.stdout, proc.stderr)


@pytest.mark.parametrize("fault", ["500-forever", "garbage-forever", "401-echo"])
def test_the_key_leaks_nowhere_after_a_failing_run(tmp_path: Path, fault: str) -> None:
    key = canary_key()
    responder = None
    replies: list[Reply] = []
    if fault == "500-forever":
        replies = [Reply(status=500, body={"error": {"message": f"upstream down ({key})"}})] * 30
    elif fault == "garbage-forever":
        def responder(_request: dict[str, Any]) -> str:
            return f"Sorry, I can't. (key {key})"
    else:
        replies = [Reply(status=401, body={"error": {
            "message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
            "code": "invalid_api_key"}})] * 30
    with FakeOpenAI(responder=responder) as server:
        server.script(*replies)
        repo = new_repo(tmp_path / "repo", server.base_url)
        proc = orch_run(repo, env={"OPENAI_API_KEY": key})
        requests = list(server.requests)
    assert len(requests) == (1 if fault == "401-echo" else 3)  # 401: not retried
    assert all(r.headers.get("authorization") == f"Bearer {key}" for r in requests)
    assert all(key not in json.dumps(r.body) for r in requests)  # re-asks echo it scrubbed
    [alert] = project_view(repo)["alerts"]
    assert alert["kind"] == "provider_error" and "cto" in alert["message"]
    if fault == "401-echo":
        assert "Incorrect API key provided: ***" in alert["message"]
    status_text = run_orch(repo, "status").stdout + run_orch(repo, "log").stdout
    assert_nowhere(repo, key, proc.stdout, proc.stderr, status_text)


# --------------------------------------------------------------------------------------------
# 4. Faults fail closed, at the run level


@pytest.mark.parametrize(("answer", "reason", "requests"), [
    ("The spec looks fine to me!", "rejected after 2 re-asks: not valid JSON", 3),
    ('{"title": 42, "requirements": "none"}',
     "rejected after 2 re-asks: does not match the schema", 3),
    (Reply(body=b"<html>502 Bad Gateway</html>"),
     "malformed response body (not JSON) after 2 retries", 3),
], ids=["prose", "schema-violating-json", "non-json-body"])
def test_a_server_answering_garbage_fails_the_run_closed(
    tmp_path: Path, answer: str | Reply, reason: str, requests: int
) -> None:
    with FakeOpenAI(responder=lambda _request: answer) as server:
        repo = new_repo(tmp_path / "repo", server.base_url)
        head = git(repo, "rev-parse", "HEAD")
        proc = orch_run(repo)
        assert len(server.requests) == requests
    # Reactions that failed closed are reported and, as the project could not finish, the run
    # exits 1 saying why in one line (cli.py `_summary`); the alert is in the log.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The reason itself is the run's last line, not only a count; why the run failed is
    # the one Error line.
    assert "1 reaction(s) failed closed:" in proc.stdout
    assert reason in proc.stdout.splitlines()[-1]
    assert proc.stderr == f"Error: {PROJECT} did not complete (it is created); see 'orch status'\n"
    view = project_view(repo)
    assert view["status"] == "created"
    [alert] = view["alerts"]
    assert alert["kind"] == "provider_error" and alert["severity"] == "error"
    assert alert["message"].startswith("cto review_spec")
    assert "(role cto, model test-model)" in alert["message"] or "cto answer" in alert["message"]
    assert reason in alert["message"]
    # Nothing half-written: the claim made before the call and the alert are the only new
    # events; no doc. What the failed call cost is on the alert, its transcript (every
    # attempt) beside it.
    events = json.loads(run_orch(repo, "log", PROJECT, "--json").stdout)
    assert [e["type"] for e in events] == ["project.created", "reaction.claimed",
                                           "monitor.alert"]
    assert not (repo / "project" / PROJECT).exists()
    assert events[2]["usage"]["calls"] == requests  # on the alert, not on the claim
    assert alert["attempt"] == 1 and alert["state"] == "current"
    [link] = [lk for lk in events[2]["links"] if lk["kind"] == "transcript"]
    record = json.loads((repo / link["ref"]).read_text())
    assert record["output"] is None and len(record["attempts"]) == requests
    assert git(repo, "diff", "--name-only", head, "HEAD", "--", "project").strip() == ""
    assert_verifies_clean(repo)


def test_a_fault_mid_run_names_the_squad_role(tmp_path: Path) -> None:
    """QA answers garbage: each QA reaction fails closed with an alert naming qa and its task."""
    team = ScriptedTeam()
    with FakeOpenAI(responder=only_for("QaOutput", "not json", team)) as server:
        repo = new_repo(tmp_path / "repo", server.base_url)
        proc = orch_run(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    view = project_view(repo)
    assert view["status"] != "completed"
    alerts = view["alerts"]
    assert alerts and {a["kind"] for a in alerts} == {"provider_error"}
    in_qa = {t["id"]: t["module"] for t in view["tasks"] if t["status"] == "in_qa"}
    assert len(in_qa) == len(alerts)  # one alert per task QA could not judge
    named = set()
    for alert in alerts:
        squad, _, task = alert["message"].split(":", 1)[0].partition(" qa ")
        assert squad == f"qa.{in_qa[task]}" and alert["module"] == in_qa[task]
        assert "openai: qa answer from test-model rejected after 2 re-asks: not valid JSON" \
            in alert["message"]
        named.add(task)
    assert named == set(in_qa)
    assert f"{len(alerts)} reaction(s) failed closed" in proc.stdout
    assert not any(t["status"] == "passed" for t in view["tasks"])
    assert_verifies_clean(repo)


def test_a_429_with_retry_after_is_waited_out_and_the_project_completes(
    tmp_path: Path
) -> None:
    team = ScriptedTeam()
    with FakeOpenAI(responder=team) as server:
        server.script(Reply(status=429, headers={"Retry-After": "1"},
                            body={"error": {"message": "Rate limit reached"}}))
        repo = new_repo(tmp_path / "repo", server.base_url)
        proc = orch_run(repo)
        requests = list(server.requests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    view = project_view(repo)
    assert view["status"] == "completed" and view["alerts"] == []
    assert requests[1].at - requests[0].at >= 0.95  # Retry-After: 1 was honoured
    first = next(t for t in transcripts(repo) if t["schema"] == "SpecReviewOutput")
    assert [{k: a[k] for k in ("status", "error", "wait_s") if k in a}
            for a in first["attempts"]] == [
        {"status": 429, "error": "429 Too Many Requests", "wait_s": 1.0},
        {"status": 200, "error": ""},
    ]
    assert first["attempts"][0]["prompt_tokens"] == 0  # refused: the server spent nothing
    assert view["usage"]["calls"] == len(requests)
    assert_verifies_clean(repo)


# --------------------------------------------------------------------------------------------
# 5. The budget


def test_the_token_budget_stops_the_run(tmp_path: Path) -> None:
    limit = 20_000
    team = ScriptedTeam()
    with FakeOpenAI(responder=team) as server:
        repo = new_repo(tmp_path / "repo", server.base_url,
                        {"budget": {"max_tokens": limit}})
        proc = orch_run(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    view = project_view(repo)
    assert view["status"] != "completed"
    budget_alerts = [a for a in view["alerts"] if a["kind"] == "budget_exceeded"]
    assert budget_alerts, view["alerts"]
    assert f"would pass llm.budget.max_tokens {limit}" in budget_alerts[0]["message"]
    usage = view["usage"]
    used = usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["calls"] >= 3  # it stopped mid-run, not before the first call
    assert used == sum(c.prompt_tokens + c.completion_tokens for c in team.calls)
    assert used <= limit + MAX_OUTPUT_TOKENS
    assert_verifies_clean(repo)


# --------------------------------------------------------------------------------------------
# 6. Replay


def _replay_in(repo: Path, source: Recorded, flat: bool) -> subprocess.CompletedProcess[str]:
    recorded_dir = source.repo / ".orchestrator" / "transcripts"
    target = repo / ".orchestrator" / "transcripts"
    if flat:
        target.mkdir(parents=True)
        for path in (recorded_dir / PROJECT).glob("*.json"):
            shutil.copy(path, target / path.name)
    else:
        shutil.copytree(recorded_dir, target)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "test: the recorded transcripts")
    return orch_run(repo, "--replay")


@pytest.mark.parametrize("flat", [False, True], ids=["as-committed", "flat"])
def test_replay_in_a_fresh_repository_reproduces_the_run(
    recorded: Recorded, tmp_path: Path, flat: bool
) -> None:
    """Repo B: the same spec, A's transcripts (in A's per-project folders, or all at the top
    of `.orchestrator/transcripts/`), no server (it is stopped; the config still names its
    dead URL, so any network use would fail). Every prompt of B hashes as in A: the prompts
    hold nothing run-specific (ids, times, commits)."""
    repo = new_repo(tmp_path / "b", recorded.base_url)
    proc = _replay_in(repo, recorded, flat=flat)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    view = project_view(repo)
    assert view["alerts"] == []
    assert outcome(view) == outcome(project_view(recorded.repo))
    assert artifacts(repo) == artifacts(recorded.repo)
    assert_verifies_clean(repo)
