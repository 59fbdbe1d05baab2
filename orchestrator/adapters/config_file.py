"""Reading `.orchestrator/config.yaml` into the Config model, with one-line errors."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

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
        raise ConfigError(f"{CONFIG_PATH}: {loc}: {err['msg']}") from None
