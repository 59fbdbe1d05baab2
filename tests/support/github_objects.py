"""Complete GitHub REST objects (users, repositories, pulls, reviews, comments) as GitHub sends
them: githubkit validates every response against GitHub's schema, so the fake server answers
whole objects, never the few fields orch reads."""

from __future__ import annotations

from typing import Any

STAMP = "2026-01-01T00:00:00Z"


def user(base: str, login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    url = f"{base}/users/{login}"
    return {
        "login": login, "id": user_id, "node_id": f"U_{user_id}",
        "avatar_url": f"{base}/avatars/{user_id}", "gravatar_id": "", "url": url,
        "html_url": f"{base}/html/{login}", "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}", "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions", "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos", "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events", "type": kind, "site_admin": False,
    }


def private_user(base: str, login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    return {**user(base, login, user_id, kind), "name": login, "company": None, "blog": "",
            "location": None, "email": None, "hireable": None, "bio": None, "public_repos": 0,
            "public_gists": 0, "followers": 0, "following": 0, "created_at": STAMP,
            "updated_at": STAMP, "private_gists": 0, "total_private_repos": 0,
            "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0,
            "two_factor_authentication": False}


_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}", "contributors_url": "/contributors",
    "deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
    "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges",
    "milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since}",
    "pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}", "hooks_url": "/hooks",
}


def repository(base: str, owner: dict[str, Any], name: str) -> dict[str, Any]:
    full = f"{owner['login']}/{name}"
    url = f"{base}/repos/{full}"
    return {
        "id": 1, "node_id": "R_1", "name": name, "full_name": full, "license": None,
        "forks": 0, "owner": owner, "private": False, "html_url": f"{base}/html/{full}",
        "description": None, "fork": False, "url": url,
        **{key: url + tail for key, tail in _REPO_URLS.items()},
        "git_url": f"git://fake/{full}.git", "ssh_url": f"git@fake:{full}.git",
        "clone_url": f"{base}/git/{full}.git", "svn_url": f"{base}/svn/{full}",
        "mirror_url": None, "homepage": None, "language": None, "forks_count": 0,
        "stargazers_count": 0, "watchers_count": 0, "size": 0, "default_branch": "main",
        "open_issues_count": 0, "has_pages": False, "disabled": False, "pushed_at": STAMP,
        "created_at": STAMP, "updated_at": STAMP, "open_issues": 0, "watchers": 0,
    }


def _ref(repo: dict[str, Any], ref: str, sha: str) -> dict[str, Any]:
    return {"label": f"{repo['owner']['login']}:{ref}", "ref": ref, "repo": repo, "sha": sha,
            "user": repo["owner"]}


def pull(base: str, repo: dict[str, Any], pr: dict[str, Any], full: bool) -> dict[str, Any]:
    """A pull request from the server's record of it: the full object (GET one, POST, PATCH)
    or the simple one of a listing."""
    url = f"{repo['url']}/pulls/{pr['number']}"
    issue = f"{repo['url']}/issues/{pr['number']}"
    html = f"{repo['html_url']}/pull/{pr['number']}"
    links = {"comments": {"href": f"{issue}/comments"}, "commits": {"href": f"{url}/commits"},
             "statuses": {"href": f"{repo['url']}/statuses/{pr['head_sha']}"},
             "html": {"href": html}, "issue": {"href": issue},
             "review_comments": {"href": f"{url}/comments"},
             "review_comment": {"href": f"{repo['url']}/pulls/comments{{/number}}"},
             "self": {"href": url}}
    out: dict[str, Any] = {
        "url": url, "id": 1000 + pr["number"], "node_id": f"PR_{pr['number']}", "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue,
        "commits_url": f"{url}/commits", "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{repo['url']}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": f"{repo['url']}/statuses/{pr['head_sha']}", "number": pr["number"],
        "state": pr["state"], "locked": False, "title": pr["title"], "user": pr["user"],
        "body": pr["body"], "labels": [], "milestone": None, "active_lock_reason": None,
        "created_at": STAMP, "updated_at": STAMP, "closed_at": pr["closed_at"],
        "merged_at": pr["merged_at"], "merge_commit_sha": pr["merge_sha"], "assignee": None,
        "assignees": [], "requested_reviewers": [], "requested_teams": [],
        "head": _ref(repo, pr["head"], pr["head_sha"]), "base": _ref(repo, pr["base"], "0" * 40),
        "_links": links, "author_association": "NONE", "auto_merge": None, "draft": pr["draft"],
    }
    if full:
        out.update({"merged": pr["merged_at"] is not None, "mergeable": True, "rebaseable": True,
                    "mergeable_state": "clean", "merged_by": pr["merged_by"], "comments": 0,
                    "review_comments": pr["review_comments"], "maintainer_can_modify": False,
                    "commits": 1, "additions": 1, "deletions": 0, "changed_files": 1})
    return out


def review(repo: dict[str, Any], number: int, rv: dict[str, Any]) -> dict[str, Any]:
    html = f"{repo['html_url']}/pull/{number}#pullrequestreview-{rv['id']}"
    pr_url = f"{repo['url']}/pulls/{number}"
    return {"id": rv["id"], "node_id": f"PRR_{rv['id']}", "user": rv["user"], "body": rv["body"],
            "state": rv["state"], "html_url": html, "pull_request_url": pr_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "submitted_at": rv["submitted_at"], "commit_id": rv["commit_id"],
            "author_association": "COLLABORATOR"}


def review_comment(repo: dict[str, Any], number: int, review_id: int,
                   cm: dict[str, Any]) -> dict[str, Any]:
    url = f"{repo['url']}/pulls/comments/{cm['id']}"
    html = f"{repo['html_url']}/pull/{number}#discussion_r{cm['id']}"
    pr_url = f"{repo['url']}/pulls/{number}"
    return {"url": url, "pull_request_review_id": review_id, "id": cm["id"],
            "node_id": f"PRRC_{cm['id']}", "diff_hunk": "@@ -0,0 +1 @@", "path": cm["path"],
            "position": cm["line"], "original_position": cm["line"] or 1,
            "commit_id": cm["commit_id"], "original_commit_id": cm["commit_id"],
            "user": cm["user"], "body": cm["body"], "created_at": STAMP, "updated_at": STAMP,
            "html_url": html, "pull_request_url": pr_url, "author_association": "COLLABORATOR",
            "_links": {"self": {"href": url}, "html": {"href": html},
                       "pull_request": {"href": pr_url}},
            "line": cm["line"], "side": "RIGHT",
            "subject_type": "line" if cm["line"] is not None else "file"}


def permission(collaborator: dict[str, Any], level: str) -> dict[str, Any]:
    role = {"admin": "admin", "write": "write", "read": "read", "none": "none"}[level]
    return {"permission": level, "role_name": role,
            "user": {**collaborator, "role_name": role}}
