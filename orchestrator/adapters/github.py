"""The door to GitHub's REST API (through githubkit): pull requests, their reviews and review
comments, and who may write. Tokens come from the environment only and never leave here."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.core.pull_requests import LineComment, Person, PullReview, PullState
from orchestrator.errors import OrchError

if TYPE_CHECKING:
    from githubkit import GitHub

DEFAULT_API_URL = "https://api.github.com"
TOKEN_VARIABLES = ("GITHUB_TOKEN", "GH_TOKEN")
T = TypeVar("T")


class GitHubError(OrchError):
    """Raised when GitHub refuses or cannot be reached; names the call, never the token."""


def repository_from_remote(url: str) -> str | None:
    """`owner/name` of a GitHub remote URL (https or ssh), or None."""
    match = re.search(r"[:/]([^/:]+)/([^/]+?)(?:\.git)?/?$", url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


class GitHubHost:
    """One repository on GitHub (or on a server answering its REST API at GITHUB_API_URL)."""

    def __init__(self, repository: str, token: str, api_url: str = DEFAULT_API_URL,
                 timeout_s: float = 30.0, server_url: str | None = None) -> None:
        from githubkit import GitHub

        owner, sep, name = repository.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise GitHubError(f"repository '{repository}' is not OWNER/NAME")
        self.owner, self.name = owner, name
        self.api_url = api_url.rstrip("/")
        self.server_url = (server_url or _server_of(self.api_url)).rstrip("/")
        self._gh: GitHub[Any] = GitHub(token, base_url=self.api_url + "/", timeout=timeout_s,
                                       http_cache=False)
        self._permissions: dict[str, str] = {}
        self._own_login: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None,
                         repository: str | None = None) -> GitHubHost:
        env = os.environ if env is None else env
        token = next((env[v] for v in TOKEN_VARIABLES if env.get(v)), "")
        if not token:
            raise GitHubError("no GitHub token: set GITHUB_TOKEN or GH_TOKEN in the environment")
        repo = repository or env.get("GITHUB_REPOSITORY", "")
        if not repo:
            raise GitHubError("which repository? set GITHUB_REPOSITORY=OWNER/NAME or give "
                              "--repository")
        return cls(repo, token, env.get("GITHUB_API_URL") or DEFAULT_API_URL,
                   server_url=env.get("GITHUB_SERVER_URL") or None)

    @property
    def html_url(self) -> str:
        """The repository's web page (links in pull request bodies)."""
        return f"{self.server_url}/{self.owner}/{self.name}"

    # --- reading ---------------------------------------------------------------------

    def own_login(self) -> str:
        """Who orch is here; an Actions token may not ask (then it is the Actions bot, a bot)."""
        if self._own_login is None:
            from githubkit.exception import RequestFailed

            try:
                self._own_login = self._gh.rest.users.get_authenticated().parsed_data.login
            except RequestFailed:
                self._own_login = "github-actions[bot]"
            except Exception as exc:
                raise self._error("GET /user", exc) from None
        return self._own_login

    def pulls(self, state: str = "all", head: str | None = None) -> list[PullState]:
        kwargs: dict[str, Any] = {"state": state, "per_page": 100}
        if head is not None:
            kwargs["head"] = f"{self.owner}:{head}"
        with self._call("GET /pulls"):
            found = list(self._gh.rest.paginate(self._gh.rest.pulls.list, owner=self.owner,
                                                repo=self.name, **kwargs))
        return [_pull_state(p, merged=p.merged_at is not None) for p in found]

    def pull(self, number: int) -> PullState:
        with self._call(f"GET /pulls/{number}"):
            data = self._gh.rest.pulls.get(self.owner, self.name, number).parsed_data
        return _pull_state(data, merged=bool(data.merged) or data.merged_at is not None)

    def reviews(self, number: int) -> list[PullReview]:
        """Every review of a pull request, each with its line comments."""
        with self._call(f"GET /pulls/{number}/reviews"):
            found: list[Any] = list(self._gh.rest.paginate(self._gh.rest.pulls.list_reviews,
                                                owner=self.owner, repo=self.name,
                                                pull_number=number, per_page=100))
        out = []
        for r in found:
            comments: tuple[LineComment, ...] = ()
            if r.state == "CHANGES_REQUESTED":  # only a change request's comments are findings
                comments = tuple(self._review_comments(number, r.id))
            user = r.user
            out.append(PullReview(
                id=r.id, author=Person(user.login, user.type) if user else Person("ghost"),
                state=r.state, body=r.body or "", submitted_at=_time(r.submitted_at),
                url=r.html_url, comments=comments))
        return out

    def _review_comments(self, number: int, review_id: int) -> Iterator[LineComment]:
        with self._call(f"GET /pulls/{number}/reviews/{review_id}/comments"):
            found: list[Any] = list(self._gh.rest.paginate(
                self._gh.rest.pulls.list_comments_for_review,
                                                owner=self.owner, repo=self.name,
                                                pull_number=number, review_id=review_id,
                                                per_page=100))
        for c in found:
            line = c.line if isinstance(c.line, int) else c.original_line
            yield LineComment(c.path, line if isinstance(line, int) else None, c.body)

    def permission(self, login: str) -> str:
        """admin, write, read or none (GitHub folds maintain into write, triage into read)."""
        if login not in self._permissions:
            from githubkit.exception import RequestFailed

            try:
                with_role = self._gh.rest.repos.get_collaborator_permission_level(
                    self.owner, self.name, login).parsed_data
                level = with_role.permission
                self._permissions[login] = "write" if with_role.role_name == "maintain" else level
            except RequestFailed as exc:
                if exc.response.status_code != 404:
                    raise self._error(f"GET /collaborators/{login}/permission", exc) from None
                self._permissions[login] = "none"  # no such user, or not one of ours
            except Exception as exc:
                raise self._error(f"GET /collaborators/{login}/permission", exc) from None
        return self._permissions[login]

    # --- writing ---------------------------------------------------------------------

    def open_draft(self, head: str, base: str, title: str, body: str) -> PullState:
        """A draft pull request; where the plan has no drafts (GitHub says so with a 422),
        a ready one: the review is the same."""
        from githubkit.exception import RequestFailed

        with self._call("POST /pulls"):
            try:
                data = self._gh.rest.pulls.create(self.owner, self.name, head=head, base=base,
                                                  title=title, body=body, draft=True).parsed_data
            except RequestFailed as exc:
                if exc.response.status_code != 422 or "draft" not in _details(exc).lower():
                    raise
                data = self._gh.rest.pulls.create(self.owner, self.name, head=head, base=base,
                                                  title=title, body=body).parsed_data
        return _pull_state(data, merged=False)

    def comment_review(self, number: int, body: str) -> None:
        """A review with event COMMENT: orch never approves (or rejects) its own work."""
        with self._call(f"POST /pulls/{number}/reviews"):
            self._gh.rest.pulls.create_review(self.owner, self.name, number, body=body,
                                              event="COMMENT")

    # --- errors ----------------------------------------------------------------------

    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        try:
            yield
        except GitHubError:
            raise
        except Exception as exc:
            raise self._error(what, exc) from None

    def _error(self, what: str, exc: BaseException) -> GitHubError:
        from githubkit.exception import RequestFailed, RequestTimeout

        where = f"GitHub {what} on {self.owner}/{self.name} ({self.api_url})"
        if isinstance(exc, RequestFailed):
            status = exc.response.status_code
            hint = {401: "; the token was refused (GITHUB_TOKEN / GH_TOKEN)",
                    403: "; the token may lack pull-requests: write",
                    404: "; no such repository or pull request"}.get(status, "")
            return GitHubError(f"{where} answered {status}: {_message(exc)}{hint}")
        if isinstance(exc, RequestTimeout):
            return GitHubError(f"{where} timed out")
        return GitHubError(f"{where} failed: {type(exc).__name__}: {str(exc)[:300]}")


def _server_of(api_url: str) -> str:
    """github.com for its API; an Enterprise server's API lives under /api/v3."""
    if api_url == DEFAULT_API_URL:
        return "https://github.com"
    return api_url.removesuffix("/api/v3")


def _message(exc: Any) -> str:
    return _details(exc)[:300]


def _details(exc: Any) -> str:
    """GitHub's message and the messages of its `errors` list (422s say why there)."""
    try:
        data = exc.response.json()
    except Exception:
        return ""
    if not isinstance(data, dict):
        return ""
    errors = [str(e.get("message", "")) for e in data.get("errors") or []
              if isinstance(e, dict) and e.get("message")]
    return "; ".join([str(data.get("message", "")), *errors])


def _time(value: datetime | Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _pull_state(p: Any, merged: bool) -> PullState:
    merged_by = getattr(p, "merged_by", None)
    return PullState(
        number=p.number, head=p.head.ref, base=p.base.ref, state=p.state, merged=merged,
        url=p.html_url, draft=bool(p.draft) if isinstance(p.draft, bool) else False,
        merged_by=Person(merged_by.login, merged_by.type) if merged_by else None)


__all__ = ["GitHubError", "GitHubHost", "repository_from_remote"]
