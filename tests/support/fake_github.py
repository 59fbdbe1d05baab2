"""A local GitHub REST server for tests (stdlib only), keeping state: pulls, reviews, review
comments, users and their permissions.

    with FakeGitHub(owner="acme", repo="shop") as gh:
        gh.add_user("alice", permission="write")
        ... orch opens pulls through githubkit against gh.base_url ...
        gh.submit_review(1, "alice", "CHANGES_REQUESTED", "", comments=[("a.py", 3, "why?")])
        gh.merge(1, "alice", method="squash")

It answers the endpoints orch's adapter uses, with complete objects (githubkit validates
responses against GitHub's schema): GET /user, GET/POST /repos/{o}/{r}/pulls, GET/PATCH
/repos/{o}/{r}/pulls/{n}, GET/POST /repos/{o}/{r}/pulls/{n}/reviews, GET
/repos/{o}/{r}/pulls/{n}/reviews/{id}/comments, GET /repos/{o}/{r}/collaborators/{u}/permission.
A request without the token is a 401, as on GitHub; every request is recorded (`requests`).
Merges are made by the test (`merge`): squash and rebase merges leave the head's commits
off the base, as on GitHub, and only the pull's `merged_at` says it was merged.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support import github_objects as obj


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any]
    authorization: str


class FakeGitHub:
    def __init__(self, owner: str = "acme", repo: str = "shop", token: str = "test-token",
                 me: str = "orch-app", me_type: str = "Bot") -> None:
        self.token = token
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.permissions: dict[str, str] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self._next_id = 500
        self.known_heads: set[str] | None = None
        """Branches GitHub has (None: any): a pull request of another head is a 422."""
        self.drafts_supported = True
        """False: like a private repository on GitHub Free, a draft is refused with a 422."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.owner_login = owner
        self.me = me
        self.add_user(owner, permission="admin")
        self.add_user(me, kind=me_type, permission="write")
        self.repo = obj.repository(self.base_url, self.users[owner], repo)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- what a test does as the people on GitHub ---------------------------------------

    def add_user(self, login: str, kind: str = "User", permission: str = "write") -> None:
        self.users[login] = obj.user(self.base_url, login, 100 + len(self.users), kind)
        self.permissions[login] = permission

    def submit_review(self, number: int, login: str, state: str, body: str = "",
                      comments: list[tuple[str, int, str]] | None = None) -> int:
        with self.lock:
            pr = self.pulls[number]
            rv = {"id": self._new_id(), "user": self.users[login], "body": body,
                  "state": state, "submitted_at": now(), "commit_id": pr["head_sha"]}
            self.reviews[number].append(rv)
            self.comments[rv["id"]] = [
                {"id": self._new_id(), "path": path, "line": line, "body": text,
                 "user": self.users[login], "commit_id": pr["head_sha"]}
                for path, line, text in comments or []]
            pr["review_comments"] += len(comments or [])
            return int(rv["id"])

    def merge(self, number: int, login: str, method: str = "merge") -> None:
        with self.lock:
            pr = self.pulls[number]
            pr.update(state="closed", closed_at=now(), merged_at=now(), merged_by=self.users[login],
                      merge_sha=f"{method[0]}{'1' * 39}")

    def close(self, number: int) -> None:
        with self.lock:
            self.pulls[number].update(state="closed", closed_at=now())

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    # --- the server ---------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                auth = self.headers.get("Authorization", "")
                fake.requests.append(Request(self.command, self.path, body, auth))
                if auth not in (f"token {fake.token}", f"Bearer {fake.token}"):
                    status, answer = 401, {"message": "Bad credentials"}
                else:
                    with fake.lock:
                        status, answer = fake._route(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler

    def _route(self, method: str, target: str, body: dict[str, Any]) -> tuple[int, Any]:
        url = urlparse(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path == "/user" and method == "GET":
            return 200, obj.private_user(self.base_url, self.me, self.users[self.me]["id"],
                                         self.users[self.me]["type"])
        prefix = f"/repos/{self.repo['full_name']}"
        if not path.startswith(prefix + "/"):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        if rest == "/pulls":
            return self._list_pulls(query) if method == "GET" else self._create_pull(body)
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            return self._one_pull(int(m.group(1)), method, body)
        if m := re.fullmatch(r"/pulls/(\d+)/reviews", rest):
            return self._reviews(int(m.group(1)), method, body, query)
        if m := re.fullmatch(r"/pulls/(\d+)/reviews/(\d+)/comments", rest):
            number, review_id = int(m.group(1)), int(m.group(2))
            if number not in self.pulls or review_id not in self.comments:
                return 404, {"message": "Not Found"}
            return 200, [obj.review_comment(self.repo, number, review_id, c)
                         for c in self._page(self.comments[review_id], query)]
        if m := re.fullmatch(r"/collaborators/([^/]+)/permission", rest):
            login = m.group(1)
            if login not in self.users:
                return 404, {"message": "Not Found"}
            return 200, obj.permission(self.users[login], self.permissions[login])
        return 404, {"message": "Not Found"}

    @staticmethod
    def _page(items: list[Any], query: dict[str, str]) -> list[Any]:
        size = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        return items[(page - 1) * size: page * size]

    def _list_pulls(self, query: dict[str, str]) -> tuple[int, Any]:
        state = query.get("state", "open")
        found = [p for p in self.pulls.values() if state == "all" or p["state"] == state]
        if "head" in query:
            owner, _, ref = query["head"].partition(":")
            found = [p for p in found if p["head"] == ref and owner == self.owner_login]
        if "base" in query:
            found = [p for p in found if p["base"] == query["base"]]
        return 200, [obj.pull(self.base_url, self.repo, p, full=False)
                     for p in self._page(found, query)]

    def _create_pull(self, body: dict[str, Any]) -> tuple[int, Any]:
        head = str(body.get("head", ""))
        if ":" in head:
            head = head.partition(":")[2]
        if any(p["head"] == head and p["state"] == "open" for p in self.pulls.values()):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {self.owner_login}:{head}."}]}
        if self.known_heads is not None and head not in self.known_heads:
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": "head", "code": "invalid"}]}
        if body.get("draft") and not self.drafts_supported:
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": "Draft pull requests are not supported in this repository."}]}
        number = len(self.pulls) + 1
        self.pulls[number] = {
            "number": number, "head": head, "base": str(body.get("base", "")),
            "title": str(body.get("title", "")), "body": body.get("body"),
            "draft": bool(body.get("draft", False)), "state": "open", "closed_at": None,
            "merged_at": None, "merged_by": None, "merge_sha": None, "review_comments": 0,
            "head_sha": f"{number:040d}", "user": self.users[self.me]}
        self.reviews[number] = []
        return 201, obj.pull(self.base_url, self.repo, self.pulls[number], full=True)

    def _one_pull(self, number: int, method: str, body: dict[str, Any]) -> tuple[int, Any]:
        if number not in self.pulls:
            return 404, {"message": "Not Found"}
        pr = self.pulls[number]
        if method == "PATCH":
            for key in ("title", "body", "state"):
                if key in body:
                    pr[key] = body[key]
            if body.get("state") == "closed":
                pr["closed_at"] = now()
        return 200, obj.pull(self.base_url, self.repo, pr, full=True)

    def _reviews(self, number: int, method: str, body: dict[str, Any],
                 query: dict[str, str]) -> tuple[int, Any]:
        if number not in self.pulls:
            return 404, {"message": "Not Found"}
        if method == "GET":
            return 200, [obj.review(self.repo, number, r)
                         for r in self._page(self.reviews[number], query)]
        event = body.get("event")
        if event not in ("COMMENT", "APPROVE", "REQUEST_CHANGES"):
            return 422, {"message": "Validation Failed: event"}
        if self.pulls[number]["user"]["login"] == self.me and event != "COMMENT":
            # GitHub refuses an approval or a change request of one's own pull request.
            return 422, {"message": "Can not approve your own pull request"}
        state = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED",
                 "REQUEST_CHANGES": "CHANGES_REQUESTED"}[event]
        rv = {"id": self._new_id(), "user": self.users[self.me], "body": body.get("body", ""),
              "state": state, "submitted_at": now(), "commit_id": self.pulls[number]["head_sha"]}
        self.reviews[number].append(rv)
        self.comments[rv["id"]] = []
        return 200, obj.review(self.repo, number, rv)
