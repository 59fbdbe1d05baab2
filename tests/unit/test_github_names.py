"""Names the GitHub adapter derives: the repository of a remote URL, the web server of an API,
and the environment it takes the token from."""

from __future__ import annotations

import pytest

from orchestrator.adapters.github import GitHubError, GitHubHost, repository_from_remote


@pytest.mark.parametrize(("url", "repo"), [
    ("https://github.com/acme/shop.git", "acme/shop"),
    ("git@github.com:acme/shop.git", "acme/shop"),
    ("https://ghe.example.com/acme/shop", "acme/shop"),
    ("/srv/origin.git", "srv/origin"),
    ("", None),
])
def test_repository_of_a_remote(url: str, repo: str | None) -> None:
    assert repository_from_remote(url) == repo


def test_web_links_follow_the_server() -> None:
    assert GitHubHost("a/b", "t").html_url == "https://github.com/a/b"
    assert GitHubHost("a/b", "t", "https://ghe.example.com/api/v3").html_url == (
        "https://ghe.example.com/a/b")
    host = GitHubHost.from_environment({"GH_TOKEN": "t", "GITHUB_REPOSITORY": "a/b",
                                        "GITHUB_SERVER_URL": "https://git.example.org"})
    assert host.html_url == "https://git.example.org/a/b"


def test_the_token_comes_from_the_environment_or_nothing_happens() -> None:
    with pytest.raises(GitHubError, match="no GitHub token"):
        GitHubHost.from_environment({"GITHUB_REPOSITORY": "a/b"})
    with pytest.raises(GitHubError, match="OWNER/NAME"):
        GitHubHost("not-a-repo", "t")

