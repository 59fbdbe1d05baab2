"""Which committed files are specs that start projects, how big one may be, and the readable
project id a spec's file name gives (pure: the runtime brings the files)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from text_unidecode import unidecode

SPECS_DIR = "specs"
MAX_SPEC_BYTES = 256 * 1024
"""A spec is read whole by every agent that needs it: past this it is refused, never cut."""
SPEC_SUFFIXES = (".md", ".markdown")
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.DOTALL)
_IGNORE_MARK = re.compile(r"^orch[ \t]*:[ \t]*[\"']?ignore[\"']?[ \t]*(#.*)?$", re.MULTILINE)


def front_matter(text: str) -> str:
    """The YAML front matter block of a Markdown file ('' when it has none)."""
    match = _FRONT_MATTER.match(text)
    return match.group(1) if match else ""


def without_front_matter(text: str) -> str:
    return _FRONT_MATTER.sub("", text, count=1)


def why_not_a_spec(path: str, text: str, ignored: tuple[str, ...] | list[str]) -> str | None:
    """Why a file under specs/ does not start a project, or None when it does."""
    name = PurePosixPath(path).name
    if not name.lower().endswith(SPEC_SUFFIXES):
        return "not a Markdown file"
    if name.lower().startswith("readme"):
        return "a README"
    for folder in ignored:
        prefix = folder.strip("/") + "/"
        if path.startswith(prefix) or path == folder.strip("/"):
            return f"in {prefix}, which the config ignores (specs.ignore)"
    if _IGNORE_MARK.search(front_matter(text)):
        return "marked 'orch: ignore' in its front matter"
    return None


def spec_size_error(path: str, size: int) -> str | None:
    """The one line that refuses a spec over the size limit, or None."""
    if size <= MAX_SPEC_BYTES:
        return None
    return (f"spec {path} is {size} bytes, over the limit of {MAX_SPEC_BYTES} bytes; "
            "split it into smaller specs")


def slug(text: str, limit: int = 50) -> str:
    """Lower-case ASCII words joined by '-': letters of any script transliterated, so
    'Horta Comunitária' is 'horta-comunitaria' and not 'horta-comunit-ria'."""
    ascii_text = unidecode(text).lower()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return words[:limit].rstrip("-")


def project_id_for(spec_path: str, taken: set[str]) -> str:
    """A new project's id from its spec's file name, unique among `taken`."""
    stem = PurePosixPath(spec_path).name
    for suffix in SPEC_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    base = slug(stem) or "project"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate
