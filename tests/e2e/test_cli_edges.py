"""The rough edges a new user meets first: init in a subfolder, -h, --json, bad values, the
status table without a terminal, a Ctrl-C while the command line loads, the LICENSE."""

from __future__ import annotations

import builtins
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator import entry
from tests.conftest import run_orch

ROOT = Path(__file__).resolve().parents[2]


def test_init_in_a_subfolder_uses_the_enclosing_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    sub = tmp_path / "docs" / "deep"
    sub.mkdir(parents=True)
    out = json.loads(run_orch(sub, "init", "--json").stdout)
    assert Path(out["root"]) == tmp_path.resolve()
    assert (tmp_path / ".orchestrator" / "config.yaml").is_file()
    assert not (sub / ".git").exists() and not (sub / ".orchestrator").exists()


def test_help_json_and_refused_values(tmp_path: Path) -> None:
    assert "Usage:" in run_orch(tmp_path, "-h").stdout
    run_orch(tmp_path, "init")
    for args in (["watch", "--poll", "0.05"], ["log", "--type", "no.such.type"]):
        proc = run_orch(tmp_path, *args, check=False)
        assert proc.returncode == 2 and proc.stderr.startswith("Error:"), (args, proc.stderr)
        assert proc.stderr.count("\n") == 1
    assert json.loads(run_orch(tmp_path, "run", "--json").stdout)["problems"] == []
    assert json.loads(run_orch(tmp_path, "run", "--dry-run", "--json").stdout) == {"specs": []}


@pytest.mark.parametrize(("config", "message"), [
    ("parallelism: true\n", "parallelism: Input should be a valid integer (got 'True')"),
    ("paralelism: 3\n", "unknown key 'paralelism'; did you mean 'parallelism'?"),
    ("llm:\n  offline:\n    sed: 3\n", "unknown key 'llm.offline.sed'; did you mean "
                                       "'llm.offline.seed'?"),
])
def test_config_of_the_wrong_type_or_an_unknown_key_is_refused(
    tmp_path: Path, config: str, message: str
) -> None:
    run_orch(tmp_path, "init")
    (tmp_path / ".orchestrator" / "config.yaml").write_text(config)
    proc = run_orch(tmp_path, "run", check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


def test_status_without_a_terminal_keeps_one_line_per_task(tmp_path: Path) -> None:
    run_orch(tmp_path, "init")
    words = " ".join(f"word{n}" for n in range(80))
    spec = f"# Long titles\n\n## Backend\n\n- FR-1: The backend {words}.\n"
    (tmp_path / "specs" / "long.md").write_text(spec)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "spec"], cwd=tmp_path, check=True)
    run_orch(tmp_path, "run")
    out = run_orch(tmp_path, "status", env={"COLUMNS": "100"}).stdout
    task_rows = [ln for ln in out.splitlines() if ln.startswith("│ backend-1 ")]
    assert len(task_rows) == 1 and "…" in task_rows[0]  # one line, the title cut
    assert all(len(ln) <= 100 for ln in out.splitlines())
    at_head = json.loads(run_orch(tmp_path, "status", "--at", "HEAD", "--json").stdout)
    assert at_head["findings"] == []  # the .gitkeep of `orch init` is no stray file


def test_a_ctrl_c_while_the_command_line_loads_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = builtins.__import__

    def interrupted(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "orchestrator.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    with pytest.raises(SystemExit) as stopped:
        entry.main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "Interrupted.\n"


def test_the_license_is_the_one_pyproject_names() -> None:
    assert "license = \"MIT\"" in (ROOT / "pyproject.toml").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
