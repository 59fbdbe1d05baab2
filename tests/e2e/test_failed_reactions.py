"""A server that always answers off-schema, end to end through `orch`: each failure is its own
alert, the reaction stops after K failures (across runs and watch passes) until `orch retry`,
and every token the server counted is in `orch status`."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_orch
from tests.e2e.test_openai_run import PROJECT, new_repo, orch_run, project_view
from tests.support.fake_openai import FakeOpenAI

PER_ANSWER = (11, 7)  # the fake's usage per answer


def test_k_failures_then_a_wait_for_orch_retry_with_every_token_counted(tmp_path: Path) -> None:
    with FakeOpenAI(responder=lambda _request: '{"title": 42}') as server:
        repo = new_repo(tmp_path / "repo", server.base_url, max_failures=2)
        calls = []
        for _ in range(2):
            proc = orch_run(repo)
            assert proc.returncode == 1
            calls.append(len(server.requests))
        assert calls == [3, 6]  # one answer and two re-asks a run
        assert "now waits for a person: 'orch retry task-tracker review_spec'" in proc.stdout

        view = project_view(repo)
        assert [(a["attempt"], a["state"]) for a in view["alerts"]] == [
            (1, "superseded"), (2, "current")]
        [failed] = view["failed_reactions"]
        assert failed["reaction"] == "review_spec" and failed["waiting"] is True
        assert failed["reason"] == view["alerts"][-1]["message"]
        usage = view["usage"]
        assert (usage["prompt_tokens"], usage["completion_tokens"], usage["calls"]) == (
            PER_ANSWER[0] * 6, PER_ANSWER[1] * 6, 6)
        assert "failed reactions" in run_orch(repo, "status").stdout

        # Neither a third run nor a watch pays for it again.
        orch_run(repo)
        assert len(server.requests) == 6
        watch = subprocess.Popen([sys.executable, "-m", "orchestrator", "watch", "--poll", "0.5"],
                                 cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, stdin=subprocess.DEVNULL)
        time.sleep(4)
        watch.send_signal(signal.SIGINT)
        _out, err = watch.communicate(timeout=30)
        assert "Traceback" not in err, err
        assert len(server.requests) == 6

        retried = run_orch(repo, "retry", PROJECT)
        assert "review_spec will be tried again" in retried.stdout
        bad = run_orch(repo, "retry", PROJECT, "plan_backlog:web", check=False)
        assert bad.returncode == 2 and bad.stderr.startswith("Error: ")
        assert orch_run(repo).returncode == 1
        assert len(server.requests) == 9
        view = project_view(repo)
        assert [a["attempt"] for a in view["alerts"]] == [1, 2, 3]
        assert view["usage"]["calls"] == 9
