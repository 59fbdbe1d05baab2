"""The two message templates: every delegation's brief and every result, rendered and parsed here.

A brief:                         A result:
    [TASK]                           [EXPECTED RETURN RESPONSE]
    [RELEVANT COMPLETE CONTEXT]      [ANY OTHER ADDITIONAL INFORMATION]
    [EXPECTED OUTPUT FILES]  opt.    [SUGGESTIONS]                      opt.
    [EXPECTED RETURN]

A result that does not answer its brief (a required section missing or empty, an expected
output file not written) is rejected before the parent reads it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

TASK = "TASK"
CONTEXT = "RELEVANT COMPLETE CONTEXT"
OUTPUT_FILES = "EXPECTED OUTPUT FILES"
RETURN = "EXPECTED RETURN"
RESPONSE = "EXPECTED RETURN RESPONSE"
INFO = "ANY OTHER ADDITIONAL INFORMATION"
SUGGESTIONS = "SUGGESTIONS"

_HEADER = re.compile(r"^\[([A-Z ]+)\]\s*$", re.MULTILINE)


class TemplateError(ValueError):
    """A message does not follow its template; the reason names the section."""


@dataclass(frozen=True)
class Brief:
    task: str
    context: str
    expected_return: str
    expected_files: tuple[str, ...] = ()

    def render(self) -> str:
        parts = [f"[{TASK}]\n{self.task.strip()}", f"[{CONTEXT}]\n{self.context.strip()}"]
        if self.expected_files:
            parts.append(f"[{OUTPUT_FILES}]\n" + "\n".join(f"- {p}" for p in self.expected_files))
        parts.append(f"[{RETURN}]\n{self.expected_return.strip()}")
        return "\n\n".join(parts) + "\n"

    @classmethod
    def parse(cls, text: str) -> Brief:
        sections = _sections(text, required=(TASK, CONTEXT, RETURN),
                             allowed=(TASK, CONTEXT, OUTPUT_FILES, RETURN))
        files = tuple(
            line.strip()[2:].strip() for line in sections.get(OUTPUT_FILES, "").splitlines()
            if line.strip().startswith("- ")
        )
        return cls(task=sections[TASK], context=sections[CONTEXT],
                   expected_return=sections[RETURN], expected_files=files)


@dataclass(frozen=True)
class Result:
    response: str
    additional_info: str
    suggestions: str = ""
    files: tuple[str, ...] = field(default=())

    def render(self) -> str:
        parts = [f"[{RESPONSE}]\n{self.response.strip()}",
                 f"[{INFO}]\n{self.additional_info.strip() or 'None.'}"]
        if self.suggestions.strip():
            parts.append(f"[{SUGGESTIONS}]\n{self.suggestions.strip()}")
        return "\n\n".join(parts) + "\n"

    @classmethod
    def parse(cls, text: str) -> Result:
        sections = _sections(text, required=(RESPONSE, INFO),
                             allowed=(RESPONSE, INFO, SUGGESTIONS))
        return cls(response=sections[RESPONSE], additional_info=sections[INFO],
                   suggestions=sections.get(SUGGESTIONS, ""))


def check_result(brief: Brief, result_text: str, written: Collection[str]) -> Result:
    """Parse a result and hold it against its brief; TemplateError says what is missing."""
    result = Result.parse(result_text)
    missing = [p for p in brief.expected_files if p not in written]
    if missing:
        raise TemplateError(f"expected output file(s) not written: {', '.join(missing)}")
    return result


def _sections(text: str, required: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, str]:
    # Only known headers split sections: any other bracketed line belongs to a section's body.
    matches = [m for m in _HEADER.finditer(text) if m.group(1).strip() in allowed]
    sections: dict[str, str] = {}
    if matches and text[: matches[0].start()].strip():
        raise TemplateError("text before the first section")
    for i, match in enumerate(matches):
        name = match.group(1).strip()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if name in sections:
            raise TemplateError(f"section [{name}] appears twice")
        sections[name] = text[match.end(): end].strip()
    for name in required:
        if not sections.get(name):
            raise TemplateError(f"section [{name}] is missing or empty")
    return sections
