"""Reading `.orchestrator/config.yaml` into the Config model, with one-line errors."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.adapters.yaml import load_config_text
from orchestrator.core.config import Config
from orchestrator.errors import ConfigError, EventFileError

CONFIG_PATH = ".orchestrator/config.yaml"


def load_config(root: Path) -> Config:
    path = root / CONFIG_PATH
    if not path.exists():
        return Config()
    try:
        data = load_config_text(path.read_text(encoding="utf-8"), CONFIG_PATH)
    except EventFileError as exc:
        raise ConfigError(f"{exc}; fix {CONFIG_PATH}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {CONFIG_PATH}: {exc}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{CONFIG_PATH}: unknown key '{loc}'"
                              + _nearest(err["loc"])) from None
        raise ConfigError(f"{CONFIG_PATH}: {loc}: {err['msg']} (got {str(err['input'])[:60]!r})") from None


def _nearest(loc: tuple[Any, ...]) -> str:
    """'; did you mean ...?' naming the closest key the model knows at that place."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        inner: Any = field.annotation if field is not None else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return ""
        model = inner
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    prefix = ".".join(str(p) for p in loc[:-1])
    if close:
        return f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?"
    return f"; known keys: {', '.join(known)}"
