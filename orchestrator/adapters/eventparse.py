"""Parsing one event file's bytes into an Event (or a Finding), and writing an Event's file."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from orchestrator.adapters.eventfiles import EVENTS_DIR, FileRef
from orchestrator.adapters.yaml import MAX_DOCUMENT_BYTES, dump_document, load_document
from orchestrator.core.events import Event, event_file_name, event_rel_dir
from orchestrator.core.state import Finding
from orchestrator.errors import EventFileError


def event_path(event: Event) -> str:
    """Repository-relative path of an event's file."""
    return f"{EVENTS_DIR}/{event_rel_dir(event.project, event.seq)}/{event_file_name(event)}"


def serialize(event: Event) -> bytes:
    return dump_document(event.to_document())


def parse_event(ref: FileRef, data: bytes) -> tuple[Event, dict[str, Any]] | Finding:
    """Validate one file's bytes against the schema and against its own name and folder;
    the event comes with the mapping it was read from (the cache keeps that)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        return Finding(reason=f"file is {len(data)} bytes, over the {MAX_DOCUMENT_BYTES} limit",
                       path=ref.rel_path)
    try:
        doc = load_document(data, ref.rel_path)
    except EventFileError as exc:
        return Finding(reason=exc.reason, path=ref.rel_path, line=exc.line)
    try:
        event = Event.from_document(doc)
    except ValidationError as exc:
        return Finding(reason=_validation_reason(exc), path=ref.rel_path)
    except (ValueError, TypeError) as exc:  # a validator's own error outside pydantic's wrapping
        return Finding(reason=str(exc).splitlines()[0], path=ref.rel_path)
    problem = name_mismatch(ref, event)
    if problem:
        return Finding(reason=problem, path=ref.rel_path, event_id=event.id, type=event.type,
                       seq=event.seq)
    return event, doc


def name_mismatch(ref: FileRef, event: Event) -> str:
    """Why the file's name or folder disagrees with its content, or ''."""
    if ref.project != event.project:
        return f"event of project '{event.project}' filed under '{ref.project}'"
    expected = event_file_name(event)
    if ref.name != expected:
        return f"file name does not match its content (expected {expected})"
    if ref.shard != f"{event.seq // 1000:04d}":
        return f"event seq {event.seq} filed in shard {ref.shard}"
    return ""


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid event"
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "payload" or len(first["loc"]) == 1)
    msg = str(first.get("msg", "invalid"))
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid event: {loc + ': ' if loc else ''}{msg}{more}"


