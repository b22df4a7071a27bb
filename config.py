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


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """What the running Slack app needs beyond the Genesys settings."""

    bot_token: str | None = field(repr=False)
    """Set: one workspace. Unset: installable into many workspaces through Slack OAuth (`oauth`)."""
    signing_secret: str = field(repr=False)
    app_token: str | None = field(repr=False)
    """Set: Socket Mode. Unset: HTTP on `port`."""
    api_url: str | None
    port: int
    database_url: str
    admins: frozenset[str]
    poll_interval_s: float
    refresh_interval_s: float
    oauth: SlackOAuthSettings | None = None
    """Set (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) instead of `bot_token`: many workspaces."""
    retention_days: int = 30
    """Recorded Slack events and audit rows older than this are deleted (RETENTION_DAYS)."""

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


@dataclass(frozen=True, slots=True)
class SlackOAuthSettings:
    """The Slack app's OAuth client, for installing into many workspaces at /slack/install."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str | None
    """SLACK_REDIRECT_URI: needed only when the app has several redirect URLs configured."""


def read_service_settings(environ: Mapping[str, str]) -> ServiceSettings:
    """Settings of the running app; missing, malformed or conflicting ones raise ConfigError naming them."""
    get = {name: environ.get(name, "").strip() for name in (
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET",
        "SLACK_REDIRECT_URI", "SLACK_API_URL", "PORT", "DATABASE_URL", "SYNC_ADMINS", "POLL_INTERVAL_SECONDS",
        "REFRESH_INTERVAL_HOURS", "RETENTION_DAYS",
    )}
    oauth_names = [name for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if get[name]]
    if oauth_names and get["SLACK_BOT_TOKEN"]:
        raise ConfigError(
            f"{', '.join(oauth_names)} and SLACK_BOT_TOKEN are both set: use SLACK_BOT_TOKEN for one workspace, or "
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install into many workspaces through Slack OAuth, not both"
        )
    oauth = None
    if oauth_names:
        required = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_SIGNING_SECRET")
        missing = [name for name in required if not get[name]]
        if missing:
            raise ConfigError(f"{', '.join(missing)}: not set; installing into many workspaces needs all of "
                              f"{', '.join(required)} (Basic Information > App Credentials)")
        redirect = get["SLACK_REDIRECT_URI"] or None
        if redirect is not None and not redirect.startswith(("https://", "http://")):
            raise ConfigError(f"SLACK_REDIRECT_URI: {redirect!r} is not a URL; use the Redirect URL of the app's "
                              "OAuth & Permissions page (https://…/slack/oauth_redirect), or leave it empty")
        oauth = SlackOAuthSettings(get["SLACK_CLIENT_ID"], get["SLACK_CLIENT_SECRET"], redirect)
    else:
        missing = [name for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET") if not get[name]]
        if missing:
            raise ConfigError(f"{', '.join(missing)}: not set; copy them from the Slack app's settings (see README)")
        if not get["SLACK_BOT_TOKEN"].startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN: a bot token starts with xoxb- (Install App > Bot User OAuth Token)")
    if get["SLACK_APP_TOKEN"] and not get["SLACK_APP_TOKEN"].startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN: an app-level token starts with xapp- (Basic Information > App-Level "
                          "Tokens, scope connections:write); leave it empty to serve HTTP instead")
    port = _number(get["PORT"] or "3000", "PORT", int, 1, 65535)
    poll = _number(get["POLL_INTERVAL_SECONDS"] or "5", "POLL_INTERVAL_SECONDS", float, 1, 3600)
    refresh = _number(get["REFRESH_INTERVAL_HOURS"] or "6", "REFRESH_INTERVAL_HOURS", float, 0.01, 24 * 30)
    return ServiceSettings(
        bot_token=get["SLACK_BOT_TOKEN"] or None, signing_secret=get["SLACK_SIGNING_SECRET"],
        app_token=get["SLACK_APP_TOKEN"] or None, api_url=get["SLACK_API_URL"] or None, port=int(port),
        database_url=get["DATABASE_URL"] or "sqlite:///data/sync.db",
        admins=frozenset(part for part in get["SYNC_ADMINS"].replace(",", " ").split() if part),
        poll_interval_s=poll, refresh_interval_s=refresh * 3600, oauth=oauth,
        retention_days=_retention_days(get["RETENTION_DAYS"]),
    )


def _retention_days(raw: str) -> int:
    """RETENTION_DAYS: whole days, 1 to 3650 (ten years); empty means 30."""
    if not raw:
        return 30
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 3650:
        raise ConfigError(f"RETENTION_DAYS: {raw!r} is not a whole number of days from 1 to 3650; how long recorded "
                          "Slack events and audit rows are kept (default 30)")
    return int(raw)


def _number(raw: str, name: str, kind: type[int] | type[float], low: float, high: float) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: {raw!r} is outside {low:g} to {high:g}")
    return value


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
    # httpx logs every request at INFO: one line per Genesys call would drown the app's one line per write.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def environment() -> Mapping[str, str]:
    """The process environment, read here and nowhere else."""
    return os.environ
