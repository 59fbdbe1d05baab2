"""Text from the log on its way to people (commit messages, summaries, pull requests): no
control or zero-width characters, and no @mention that would notify anyone."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_MENTION = re.compile(r"(?<![\w.`])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9_.-]+)?")


def clean(value: object, limit: int = 200) -> str:
    """One line: unsafe characters dropped, whitespace collapsed, cut to limit."""
    out = " ".join(_UNSAFE.sub(" ", str(value)).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def defuse_mentions(value: str) -> str:
    """`@someone` shown as code (`` `@someone` ``), so GitHub notifies nobody."""
    return _MENTION.sub(lambda m: f"`{m[0]}`", value.replace("`", "'"))
