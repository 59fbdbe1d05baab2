"""What the log commands do (`emit`, `status`, `log`, `schema`), below the click layer."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from orchestrator.core.events import (
    PROJECT_ID_RE,
    Event,
    NewEvent,
    Payload,
    payload_model,
    payload_types,
)
from orchestrator.core.ids import ROLES
from orchestrator.core.state import ProjectStatus
from orchestrator.errors import EventFileError, ProjectNotFoundError, UsageError
from orchestrator.runtime.workspace import Workspace


def event_schemas() -> dict[str, Any]:
    """JSON Schema of the envelope and of every payload, by event type."""
    return {
        "envelope": Event.model_json_schema(by_alias=True),
        "events": {name: model.model_json_schema() for name, model in payload_types().items()},
    }


def parse_pairs(model: type[Payload], pairs: Sequence[str]) -> dict[str, Any]:
    """`key=value` pairs typed by the payload's fields: lists split on commas, JSON allowed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"payload pair '{pair}' is not KEY=VALUE")
        field = model.model_fields.get(key)
        if field is None:
            known = ", ".join(model.model_fields) or "none"
            raise UsageError(f"{model.type_name} has no field '{key}' (fields: {known})")
        origin = typing.get_origin(field.annotation)
        if field.annotation is str:
            out[key] = value
        elif origin is list and not value.startswith("["):
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            try:
                out[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                out[key] = value
    return out


def emit_event(
    ws: Workspace, type_name: str, project: str, pairs: Sequence[str],
    payload_file: str | None, *, actor: str | None = None, causation: str | None = None,
    request_id: str | None = None, force: bool = False,
) -> Event:
    try:
        model = payload_model(type_name)
    except KeyError as exc:
        raise UsageError(f"{exc.args[0]}; 'orch schema' lists the event types") from None
    if not PROJECT_ID_RE.match(project):
        raise UsageError(f"project id '{project}' must be lowercase letters, digits and dashes")
    data: dict[str, Any] = {}
    if payload_file:
        from orchestrator.adapters.yaml import load_config_text

        path = Path(payload_file)
        try:
            data = load_config_text(path.read_text(encoding="utf-8"), str(path))
        except OSError as exc:
            raise UsageError(f"cannot read payload file {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"payload file {path} is not UTF-8 text (YAML or JSON)") from None
        except EventFileError as exc:
            raise UsageError(f"payload file {exc}") from None
        if not isinstance(data, dict):
            raise UsageError(f"payload file {path} must hold a mapping of fields")
    data.update(parse_pairs(model, pairs))
    try:
        payload = model.model_validate(data)
        new = NewEvent(payload=payload, actor=actor or model.default_actor,
                       causation_id=causation, request_id=request_id)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise UsageError(f"invalid {type_name} payload: {loc}: {err['msg']}") from None
    if type_name != "project.created" and project not in ws.reader.projects():
        raise ProjectNotFoundError(
            f"no project '{project}'; create it with 'orch emit project.created --project "
            f"{project}' or 'orch submit SPEC'")
    if force:
        return ws.log.append(project, [new.model_copy(update={"forced": True})], check=False)[0]
    _refuse_breaking(ws, project, new)
    return ws.log.append(project, [new])[0]


def _refuse_breaking(ws: Workspace, project: str, new: NewEvent) -> None:
    """What would make `orch verify` fail for good is refused before anything is written."""
    hint = "; pass --force to write it anyway (verify will name it as forced)"
    role = new.actor.partition(".")[0]
    if role not in ROLES:
        raise UsageError(f"actor '{new.actor}' is no role (roles: {', '.join(sorted(ROLES))})"
                         + hint)
    if project not in ws.reader.projects():
        return
    if new.causation_id is not None:
        ids = {e.id for e in ws.reader.events(project)}
        if new.causation_id not in ids:
            raise UsageError(f"causation {new.causation_id} is no event of project "
                             f"'{project}'" + hint)
    status = ws.reader.states([project])[project].status
    if status in (ProjectStatus.ACCEPTED, ProjectStatus.CANCELLED):
        raise UsageError(f"project '{project}' is {status.value}: its log is closed" + hint)


def log_events(ws: Workspace, project: str | None, types: Sequence[str]) -> list[Event]:
    unknown = [t for t in types if t not in payload_types()]
    if unknown:
        raise UsageError(f"unknown event type '{unknown[0]}'; 'orch schema' lists the types")
    projects = ws.reader.projects()
    if project is not None:
        if project not in projects:
            raise ProjectNotFoundError(f"no project '{project}' in the log")
        projects = [project]
    events = [e for p in projects for e in ws.reader.events(p)]
    if types:
        events = [e for e in events if e.type in types]
    return events
