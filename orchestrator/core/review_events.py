"""The event types of review: a task's branch waiting for a person, approved, rejected,
abandoned, merged into the main branch, or sent back because it conflicts with it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from orchestrator.core.events import NAME_RE, Payload, event_type

Source = Literal["local", "github"]


@event_type("review.requested", "monitor")
class ReviewRequested(Payload):
    """QA passed a task under `review: human`: its branch waits for a person's decision."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    branch: str = ""
    head: str = ""
    """The branch's commit the person reviews."""
    files: list[str] = []
    """The paths the branch changes against the main branch."""
    lines_added: int = Field(default=0, ge=0)
    lines_removed: int = Field(default=0, ge=0)


@event_type("review.approved", "spec")
class ReviewApproved(Payload):
    """A person approved a task's branch. `merged`: the host (a pull request) merged it
    already, so orch records it and cleans up without merging again."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    by: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=5000)
    source: Source = "local"
    ref: str = Field(default="", max_length=500)
    """Where the decision was made (a pull request's url), '' for `orch approve`."""
    merged: bool = False


@event_type("review.rejected", "spec")
class ReviewRejected(Payload):
    """A person sent a task back to its Dev: the findings are the rework's, counted as one."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    by: str = Field(default="", max_length=200)
    findings: list[str] = Field(min_length=1)
    source: Source = "local"
    ref: str = Field(default="", max_length=500)


@event_type("review.abandoned", "spec")
class ReviewAbandoned(Payload):
    """The task's review ended without a merge (a pull request closed unmerged): the task
    ends, with an alert; its branch is kept under refs/orch/abandoned/."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    by: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=5000)
    source: Source = "local"
    ref: str = Field(default="", max_length=500)


@event_type("task.merged", "monitor")
class TaskMerged(Payload):
    """A task's branch is merged into the main branch by orch: the commit holding this event
    is the merge, its second parent `head`."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    branch: str = ""
    head: str = ""
    files: list[str] = []


@event_type("merge.conflicted", "monitor")
class MergeConflicted(Payload):
    """A task's branch cannot be merged into the main branch without dropping a side: it
    goes back to its Dev as rework naming the paths."""

    subject_field: ClassVar[str | None] = "task_id"
    task_id: str = Field(pattern=NAME_RE)
    branch: str = ""
    head: str = ""
    main: str = ""
    """The main branch's commit the branch conflicts with."""
    paths: list[str] = Field(min_length=1)
