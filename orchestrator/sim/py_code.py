"""Offline provider: the Python files a Dev writes — an in-memory implementation and its tests."""

from __future__ import annotations

import textwrap

from orchestrator.sim.task import Work

_STORE = '''

@dataclass
class __C__:
    """One __E__: its id and its fields."""

    id: int
    fields: dict[str, str] = field(default_factory=dict)


class __C__Store:
    """In-memory __E__ store (__IDS__): create, read, update, delete, find, history."""

    def __init__(self) -> None:
        self._items: dict[int, __C__] = {}
        self._next_id = 1
        self._history: list[tuple[int, str]] = []

    def create(self, **values: str) -> __C__:
        """Add a __E__; unknown fields are refused."""
        data = self._validated(values)
__DEFAULT__        item = __C__(id=self._next_id, fields=data)
        self._items[item.id] = item
        self._next_id += 1
        self._record(item.id, "created")
        return item

    def get(self, item_id: int) -> __C__:
        """The __E__ with this id; KeyError when there is none."""
        if item_id not in self._items:
            raise KeyError(f"__E__ {item_id} not found")
        return self._items[item_id]

    def update(self, item_id: int, **values: str) -> __C__:
        """Change fields of a __E__; the change is recorded in its history."""
        item = self.get(item_id)
        data = self._validated(values)
        changes = ", ".join(
            f"{key}: {item.fields.get(key, '')!r} -> {value!r}"
            for key, value in sorted(data.items())
        )
        item.fields.update(data)
        self._record(item_id, f"updated {changes}")
        return item

    def delete(self, item_id: int) -> None:
        """Remove a __E__; KeyError when there is none."""
        self.get(item_id)
        del self._items[item_id]
        self._record(item_id, "deleted")

    def find(self, **criteria: str) -> list[__C__]:
        """The __E__s whose fields equal every given value, oldest first."""
        return [
            item for item in self._items.values()
            if all(item.fields.get(key) == value for key, value in criteria.items())
        ]

    def history(self, item_id: int | None = None) -> list[str]:
        """Recorded changes, newest first; only those of one __E__ when an id is given."""
        return [entry for key, entry in reversed(self._history) if item_id in (None, key)]
__EXTRA__
    def _record(self, item_id: int, entry: str) -> None:
        self._history.append((item_id, f"__E__ {item_id} {entry}"))

    def _validated(self, values: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ValidationError(
                f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(FIELDS)}"
            )
__STATUS__        return dict(values)
'''

_STATUS_CHECK = '''        status = values.get("status")
        if status is not None and status not in ALLOWED_STATUSES:
            raise ValidationError(
                f"status {status!r} is not allowed; allowed values: {', '.join(ALLOWED_STATUSES)}"
            )
'''

_ASSIGN = '''
    def assign(self, item_id: int, member: str) -> __C__:
        """Assign the __E__ to one member; a new assignment replaces the previous one."""
        if not member.strip():
            raise ValidationError("assignee must name a member")
        return self.update(item_id, assignee=member.strip())

    def assigned_to(self, member: str) -> list[__C__]:
        """The __E__s assigned to a member."""
        return self.find(assignee=member)
'''

_SEARCH = '''
    def search(self, text: str) -> list[__C__]:
        """The __E__s with the text in any field (case-insensitive)."""
        needle = text.lower()
        return [
            item for item in self._items.values()
            if any(needle in value.lower() for value in item.fields.values())
        ]
'''

_AUTH = '''

class AuthError(Exception):
    """Raised when credentials or a token are wrong; maps to HTTP 401."""

    status_code = 401


@dataclass(frozen=True)
class AuthSession:
    """A signed-in session; the token never shows in a repr or a log line."""

    email: str
    expires_at: float
    token: str = field(repr=False)


def hash_password(password: str, salt: bytes) -> bytes:
    """A slow, salted hash (PBKDF2-SHA256); the password itself is never stored."""
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)


class Authenticator:
    """Sign-up, sign-in and token checks (__IDS__)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._users: dict[str, tuple[bytes, bytes]] = {}
        self._sessions: dict[str, AuthSession] = {}
        self._clock = clock

    def register(self, email: str, password: str) -> None:
        """Add a user; the password is kept only as a salted hash."""
        email = email.strip().lower()
        if "@" not in email:
            raise ValidationError("email must contain '@'")
        if len(password) < 8:
            raise ValidationError("password must have at least 8 characters")
        salt = secrets.token_bytes(16)
        self._users[email] = (salt, hash_password(password, salt))

    def sign_in(self, email: str, password: str) -> AuthSession:
        """A new session valid for TOKEN_TTL_SECONDS; AuthError on wrong credentials."""
        email = email.strip().lower()
        record = self._users.get(email)
        if record is None or not hmac.compare_digest(record[1], hash_password(password, record[0])):
            raise AuthError("email or password is wrong")
        session = AuthSession(email=email, expires_at=self._clock() + TOKEN_TTL_SECONDS,
                              token=secrets.token_urlsafe(32))
        self._sessions[session.token] = session
        return session

    def verify(self, token: str) -> str:
        """The email of a valid token's user; AuthError once the token expired."""
        session = self._sessions.get(token)
        if session is None or self._clock() >= session.expires_at:
            self._sessions.pop(token, None)
            raise AuthError("token is invalid or expired; sign in again")
        return session.email

    def sign_out(self, token: str) -> None:
        """End a session; unknown tokens are ignored."""
        self._sessions.pop(token, None)
'''

_LATENCY = '''

def p95_ms(operation: Callable[[], object], runs: int = 200) -> float:
    """The 95th percentile duration of an operation in milliseconds, over `runs` calls."""
    samples = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return samples[min(len(samples) - 1, int(0.95 * len(samples)))]
'''


def doc_text(text: str) -> str:
    return text.replace("\\", "/").replace('"""', "'''")


def _wrap(text: str, indent: str = "") -> str:
    return "\n".join(textwrap.wrap(" ".join(text.split()), 92, initial_indent=indent,
                                   subsequent_indent=indent))


def module(work: Work) -> tuple[str, str]:
    lines = [f'"""{doc_text(work.title)}.', "", doc_text(_wrap(
        f"Implements {work.ids_text} for the {work.squad} squad: {work.text}"))]
    if work.findings:
        lines += ["", "QA findings addressed:"] + [doc_text(_wrap(f"- {f}")) for f in work.findings]
    lines += ['"""', "", "from __future__ import annotations", ""]
    imports = []
    if work.auth:
        imports += ["import hashlib", "import hmac", "import secrets"]
    if work.auth or work.latency_ms:
        imports.append("import time")
    if work.auth or work.latency_ms:
        imports.append("from collections.abc import Callable")
    if work.store or work.auth:
        imports.append("from dataclasses import dataclass, field")
    lines += (imports + [""]) if imports else []
    lines += [f"REQUIREMENTS = {tuple(work.ids)!r}", f"FIELDS = {work.fields!r}"]
    if work.statuses:
        lines.append(f"ALLOWED_STATUSES = {work.statuses!r}")
    if work.auth:
        lines += [f"TOKEN_TTL_SECONDS = {work.ttl_seconds}", "PBKDF2_ITERATIONS = 100_000"]
    if work.latency_ms:
        lines.append(f"LATENCY_BUDGET_MS = {work.latency_ms}")
    lines += ["", "", "class ValidationError(ValueError):",
              '    """Raised when input breaks a rule of the requirement; the message names it."""',
              "", f"    status_code = {work.error_code}"]
    body = "\n".join(lines) + "\n"
    parts = []
    if work.store:
        extra = (_ASSIGN if work.assign else "") + (_SEARCH if work.search else "")
        parts.append(_fill(_STORE, work, extra=extra))
        parts.append("")
    if work.auth:
        parts.append(_fill(_AUTH, work))
    if work.latency_ms:
        parts.append(_LATENCY)
    code = body + "".join(p.rstrip("\n") + "\n" for p in parts if p)
    return code, _module_summary(work)


def _fill(template: str, work: Work, extra: str = "") -> str:
    default = '        data.setdefault("status", ALLOWED_STATUSES[0])\n' if work.statuses else ""
    text = (template.replace("__EXTRA__", extra).replace("__DEFAULT__", default)
            .replace("__STATUS__", _STATUS_CHECK if work.statuses else ""))
    return (text.replace("__C__", work.class_name).replace("__E__", work.entity)
            .replace("__IDS__", work.ids_text))


def _module_summary(work: Work) -> str:
    parts = []
    if work.store:
        ops = ["create", "get", "update", "delete", "find", "history"]
        ops += ["assign", "assigned_to"] if work.assign else []
        ops += ["search"] if work.search else []
        parts.append(f"{work.class_name}Store ({', '.join(ops)})")
    if work.statuses:
        parts.append(f"statuses {', '.join(work.statuses)}")
    if work.auth:
        parts.append(f"Authenticator (PBKDF2 hashes, tokens valid {work.ttl_seconds} s)")
    if work.latency_ms:
        parts.append(f"p95_ms against a {work.latency_ms} ms budget")
    return "; ".join(parts) or "module"
