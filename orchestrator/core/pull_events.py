"""The event of review on a code host: a task's branch got its pull request (opened by orch,
or an open one for the branch reused), which people review there."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from orchestrator.core.events import NAME_RE, Payload, event_type


@event_type("review.pull_opened", "monitor")
class PullOpened(Payload):
    """The pull request of a task's branch: later waits of the task (after a rework) reuse it,
    and its reviews, merge or close become review.approved / rejected / abandoned."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    number: int = Field(ge=1)
    url: str = Field(default="", max_length=500)
    branch: str = Field(default="", max_length=300)
    reused: bool = False
    """The branch had an open pull request already (opened by a person, or by an earlier run
    whose event was lost): orch took it over instead of opening a second."""
