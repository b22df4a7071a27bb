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


@dataclass(frozen=True, slots=True)
class GenesysSettings:
    """The Genesys Cloud org to talk to, as the environment gives it; `genesys.endpoints_for` checks the hosts."""

    region: str | None
    api_url: str | None
    login_url: str | None
    client_id: str
    client_secret: str = field(repr=False)
    requests_per_minute: int = 300


def read_genesys_settings(environ: Mapping[str, str]) -> GenesysSettings:
    """Genesys settings from the environment; a missing or malformed one raises ConfigError naming it."""
    missing = [name for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET") if not environ.get(name, "").strip()]
    if not environ.get("GENESYS_REGION", "").strip() and not environ.get("GENESYS_API_URL", "").strip():
        missing.insert(0, "GENESYS_REGION")
    if missing:
        raise ConfigError(
            f"{', '.join(missing)}: not set; put the Genesys Cloud region and an OAuth client-credentials client's"
            " id and secret in .env (see .env.example)"
        )
    raw_rate = environ.get("GENESYS_REQUESTS_PER_MINUTE", "300").strip() or "300"
    try:
        rate = int(raw_rate)
    except ValueError:
        rate = 0
    if not 1 <= rate <= 100_000:
        raise ConfigError(f"GENESYS_REQUESTS_PER_MINUTE: {raw_rate!r} is not a whole number from 1 to 100000")
    return GenesysSettings(
        region=environ.get("GENESYS_REGION", "").strip() or None,
        api_url=environ.get("GENESYS_API_URL", "").strip() or None,
        login_url=environ.get("GENESYS_LOGIN_URL", "").strip() or None,
        client_id=environ["GENESYS_CLIENT_ID"].strip(),
        client_secret=environ["GENESYS_CLIENT_SECRET"].strip(),
        requests_per_minute=rate,
    )


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
