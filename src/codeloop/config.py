"""User directory and configuration.

Precedence: explicit arguments, then environment variables, then the user config file
``$CODELOOP_HOME/config.toml`` (default ``~/.codeloop``). One variable, ``CODELOOP_HOME``,
relocates all user state: config, assembled models, history, figures.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from codeloop.errors import ConfigError

__all__ = ["load_config", "user_dir"]


def user_dir() -> Path:
    """The directory that holds all of codeloop's user state, created on first use."""
    raw = os.environ.get("CODELOOP_HOME")
    path = Path(raw).expanduser() if raw else Path.home() / ".codeloop"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_config() -> dict[str, Any]:
    """Read ``config.toml`` from the user directory; an absent file is an empty config."""
    path = user_dir() / "config.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from e
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e
