"""A provider that answers with hostile paths: nothing lands outside project/<p>/."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from orchestrator.agents.outputs import DevOutput, FileOutput
from orchestrator.core.config import Config
from orchestrator.core.provider import CallMeta, Completion, Message, T
from orchestrator.runtime.engine import Engine, project_done
from orchestrator.runtime.projects import submit
from orchestrator.runtime.workspace import Workspace
from orchestrator.sim.provider import OfflineProvider

SPEC = resources.files("orchestrator.examples").joinpath("task-tracker.md").read_text()

HOSTILE = [
    "../../escaped.txt",
    "/tmp/orch-absolute-escape.txt",
    "../../../.git/config",
    ".git/hooks/post-commit",
    ".github/workflows/evil.yml",
    ".orchestrator/events/x.yaml",
    "src/../../../outside.txt",
    "link/planted.txt",
    "C:\\windows\\evil.txt",
    "ok/\x00nul.txt",
]


class HostileProvider:
    """The offline provider, except that every Dev answer writes to one hostile path."""

    name = "hostile"

    def __init__(self, path: str) -> None:
        self.inner = OfflineProvider(Config().llm.offline)
        self.path = path

    def complete(self, role: str, messages: Sequence[Message], output_model: type[T],
                 meta: CallMeta) -> Completion[T]:
        completion = self.inner.complete(role, messages, output_model, meta)
        if output_model is DevOutput and completion.output.files:  # type: ignore[attr-defined]
            out: Any = completion.output
            files = [FileOutput(path=self.path, content="pwned"), *out.files]
            completion = Completion(output=out.model_copy(update={"files": files}),
                                    usage=completion.usage)
        return completion


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if ".git" not in p.relative_to(root).parts[:1]}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_paths_write_nothing_outside_the_project(tmp_path: Path, hostile: str) -> None:
    repo = tmp_path / "repo"
    outside = tmp_path / "outside"
    outside.mkdir()
    ws, _ = Workspace.init(repo)
    (repo / "specs").mkdir(exist_ok=True)
    (repo / "specs" / "t.md").write_text(SPEC)
    # A symlink planted inside the squad's folder, pointing out of the repository.
    squad_dir = repo / "project" / "t" / "backend"
    squad_dir.mkdir(parents=True)
    (squad_dir / "link").symlink_to(outside)
    git_config = (repo / ".git" / "config").read_bytes()
    project, _ = submit(ws, str(repo / "specs" / "t.md"))
    config = Config.model_validate({"max_decomposition_depth": 0, "max_qa_rework": 1})
    engine = Engine(ws, config, HostileProvider(hostile))
    report = engine.run([project], until=project_done(project))
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "outside.txt").exists()
    assert not Path("/tmp/orch-absolute-escape.txt").exists()
    assert (repo / ".git" / "config").read_bytes() == git_config
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    assert not (repo / ".github").exists()
    allowed = ("project/t/", ".orchestrator/", "specs/")
    stray = {p for p in _tree(repo) if not p.startswith(allowed)}
    assert stray <= {"project", "project/README.md", "project/t", ".orchestrator", "specs"}
    assert not any("x.yaml" in p for p in _tree(repo / ".orchestrator"))
    view = ws.reader.views([project])[project]
    assert any(a["kind"] == "path_refused" for a in view["alerts"])
    assert report.failures
    # A path that is legal in another squad's folder may hold the text; nothing else may.
    holders = {p for p in _tree(repo) if (repo / p).is_file() and not (repo / p).is_symlink()
               and "pwned" in (repo / p).read_text(errors="replace")}
    assert all(p.startswith("project/t/") and "/backend/link/" not in p for p in holders)
