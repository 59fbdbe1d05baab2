"""A repository orch works in: its root, git, the log reader and writer, and the layout."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.adapters.event_reader import LogReader
from orchestrator.adapters.eventfiles import EVENTS_DIR
from orchestrator.adapters.git import GitRepo
from orchestrator.errors import NotARepositoryError

if TYPE_CHECKING:
    from orchestrator.runtime.log import EventLog

CONFIG_PATH = ".orchestrator/config.yaml"

DEFAULT_CONFIG = """\
# orch configuration: see README.md, section "Configuration".
max_review_rounds: 3        # CTO <-> Engineer rounds before the Charter
max_qa_rework: 2            # reworks after a QA failure before a task ends rework-exhausted
max_decomposition_depth: 1  # how deep a PM may split macro tasks into subtasks
parallelism: 4              # agent calls in flight at once
lease_s: 600                # how long a Dev's claim on a task holds
loop_guard: 5000            # most events a project may gather in one round before reactions stop
specs:
  ignore: [specs/archive/]  # folders under specs/ whose files never start a project
llm:
  provider: offline         # offline | openai | replay
  offline:
    seed: 7
    qa_fail_rate: 0.0
    blocker_rate: 0.0
    dependency_request_rate: 0.0
    latency_ms: 0
"""

PROJECT_README = """\
# project/

Artifacts that orch's agents generate land here, one folder per project:
`project/<project>/docs/` (spec review, charter, reports) and one folder per squad.
Nothing outside `project/<project>/` is ever written by an agent.
"""


WORKFLOW_PATH = ".github/workflows/orch.yml"


def github_workflow() -> str:
    """The Actions workflow, pinned to the version of orch that writes it."""
    from importlib import metadata, resources

    template = resources.files("orchestrator.examples").joinpath("orch.yml").read_text()
    return template.replace("@ORCH_VERSION@", metadata.version("orch"))


class Workspace:
    """The repository, its log reader, and (made when first written to) its log writer."""

    def __init__(self, root: Path, repo: GitRepo, reader: LogReader) -> None:
        self.root = root
        self.repo = repo
        self.reader = reader

    @cached_property
    def log(self) -> EventLog:
        from orchestrator.adapters.config_file import load_config
        from orchestrator.runtime.log import EventLog

        self.repo.verify = load_config(self.root).git.verify
        return EventLog(self.repo, self.reader)

    @classmethod
    def open(cls, path: Path, use_cache: bool = True) -> Workspace:
        repo = GitRepo.open(path)
        repo.recover()
        reader = LogReader(repo.root, repo, use_cache=use_cache)
        return cls(root=repo.root, repo=repo, reader=reader)

    @classmethod
    def init(cls, path: Path, github: bool = False) -> tuple[Workspace, list[str]]:
        """Create the layout (and the repository if needed); returns what was created.
        With github, also the workflow that runs the team on GitHub Actions.

        In a folder inside a repository the layout goes to that repository's top, as git
        itself would treat the folder: a repository nested in a person's repository would be
        a surprise."""
        try:
            enclosing = GitRepo.open(path)
        except NotARepositoryError:
            enclosing = None
        if enclosing is not None:
            path = enclosing.root
            enclosing.close()
        repo = GitRepo.init(path)
        wanted = {
            CONFIG_PATH: DEFAULT_CONFIG.encode(),
            f"{EVENTS_DIR}/.gitkeep": b"",
            "specs/.gitkeep": b"",
            "project/README.md": PROJECT_README.encode(),
        }
        if github:
            wanted[WORKFLOW_PATH] = github_workflow().encode()
        created = {p: data for p, data in wanted.items() if not (repo.root / p).exists()}
        if created:
            repo.commit_files(created, "orch init: layout for specs, events and artifacts\n")
        ws = cls.open(repo.root)
        return ws, sorted(created)
