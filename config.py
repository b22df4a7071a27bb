"""Settings, read once at the edge: the environment (and `.env`) and the TOML settings file.

Nothing below `app.py` reads `os.environ`; everything is passed in from here as frozen values.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_SETTINGS_FILE = Path("sync.toml")
SETTINGS_TABLES = ("attributes", "flatten", "voice_safe")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting (and file) and says what to do."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the environment says."""

    settings_file: Path | None
    """The TOML settings file; None means built-in defaults (no SYNC_SETTINGS_FILE and no ./sync.toml)."""
    log_level: str = "INFO"


@dataclass(frozen=True, slots=True)
class SettingsTables:
    """The settings file's tables, unparsed: each package validates its own table."""

    path: Path | None
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> Mapping[str, Any]:
        return self.tables.get(name, {})

    def where(self, table: str, setting: str) -> str:
        """How an error names a setting: "sync.toml: [attributes] include"."""
        source = str(self.path) if self.path else "built-in defaults"
        return f"{source}: [{table}] {setting}"


def read_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment (call `dotenv.load_dotenv()` first to include `.env`)."""
    log_level = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in _LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL: {log_level!r} is not one of {', '.join(_LOG_LEVELS)}")
    configured = environ.get("SYNC_SETTINGS_FILE", "").strip()
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"SYNC_SETTINGS_FILE: {configured!r} is not a readable file (fix the path or unset it)")
        return Settings(path, log_level)
    return Settings(DEFAULT_SETTINGS_FILE if DEFAULT_SETTINGS_FILE.is_file() else None, log_level)


def read_settings_file(path: Path | None) -> SettingsTables:
    """Read and shape-check the TOML settings file; each table's contents are checked by its owner."""
    if path is None:
        return SettingsTables(None)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    for name, value in document.items():
        if name not in SETTINGS_TABLES:
            raise ConfigError(f"{path}: [{name}] is not a settings table (known: {', '.join(SETTINGS_TABLES)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a table ([{name}]), not a single value")
    return SettingsTables(path, document)


def configure_logging(level: str) -> None:
    """One readable line per event on standard error."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def environment() -> Mapping[str, str]:
    """The process environment, read here and nowhere else."""
    return os.environ
