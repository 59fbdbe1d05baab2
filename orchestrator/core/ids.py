"""The shapes of names and ids in the log (light: the read path imports it without pydantic)."""

from __future__ import annotations

import re

PROJECT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
ACTOR_RE = re.compile(r"^[a-z]+(\.[a-z0-9][a-z0-9-]*)?$")
ROLES = frozenset({"system", "spec", "cto", "engineer", "pm", "dev", "qa", "devops", "monitor"})
"""Who may write to the log: `system` opens projects, `spec` is the spec's author."""
