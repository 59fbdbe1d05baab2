"""The error tree: every error a user can see, each with a message that says what to do."""

from __future__ import annotations


class OrchError(Exception):
    """Base of every error that the CLI prints as one `Error: ...` line."""

    exit_code = 1


class UsageError(OrchError):
    """Raised when the user's input (arguments, payload, project name) is invalid."""

    exit_code = 2


class NotARepositoryError(OrchError):
    """Raised when a command that needs a git repository runs outside one."""


class GitError(OrchError):
    """Raised when a git operation fails; wraps the underlying git error."""


class ConcurrentUpdateError(GitError):
    """Raised when the branch moved under a compare-and-swap ref update."""


class PushContendedError(GitError):
    """Raised when a push lost the race to other workers every time it was tried; the
    commits wait in the clone for the next push."""

    def __init__(self, message: str, pushes: int = 0) -> None:
        super().__init__(message)
        self.pushes = pushes


class ProjectNotFoundError(OrchError):
    """Raised when a command names a project that the log does not hold (invalid input)."""

    exit_code = 2


class ConfigError(OrchError):
    """Raised when `.orchestrator/config.yaml` is missing a value or holds a bad one."""


class EventFileError(OrchError):
    """Raised when an event file cannot be read; carries the file, the line and the reason."""

    def __init__(self, path: str, reason: str, line: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class ProviderError(OrchError):
    """Raised when an LLM provider fails after its retries (timeout, bad answers, budget)."""
