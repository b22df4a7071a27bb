"""Settings, read once at the edge: the environment (and `.env`) and the TOML settings file.

Nothing below `app.py` reads `os.environ`; everything is passed in from here as frozen values.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from dotenv import dotenv_values

from store.database_url import DEFAULT_DATABASE_URL, url_secrets

DEFAULT_SETTINGS_FILE = Path("sync.toml")
SETTINGS_TABLES = ("attributes", "flatten", "voice_safe")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
T = TypeVar("T")


class ConfigError(Exception):
    """One or more settings are missing or wrong; each problem names its setting (and file) and says what to do."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems: tuple[str, ...] = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)

    @classmethod
    def of(cls, error: SettingProblem, where: Callable[[str], str] = str) -> ConfigError:
        """The one problem a package's settings error names, its setting named by `where` (file and table)."""
        return cls(f"{where(error.setting)}: {error.problem}")


@runtime_checkable
class SettingProblem(Protocol):
    """The shape of every package's settings error: `setting` names what is wrong, `problem` says how.

    Each package raises its own class (profiles' ProfileSettingsError, genesys' GenesysSettingsError and
    VoiceSafeSettingsError, all ValueErrors), since profiles/ may import only the standard library and genesys/ only
    httpx besides: they agree on this shape rather than on a base class, and the edge catches them through it once
    (`cli.settings`), turning each into a ConfigError line (`ConfigError.of`)."""

    setting: str
    problem: str


def describe_cause(error: BaseException) -> str:
    """The cause a ConfigError quotes when the network or the system refused what a setting names (a port, a URL)."""
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return f"{type(error).__name__}: {reason}"


class SettingsProblems:
    """Collects the problems of several readers, so one answer names every missing or invalid setting at once."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def attempt(self, read: Callable[..., T], *arguments: Any) -> T | None:
        """`read(*arguments)`, or None with its problems kept when it raises ConfigError."""
        try:
            return read(*arguments)
        except ConfigError as error:
            self.problems.extend(error.problems)
            return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(*self.problems)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the environment says."""

    settings_file: Path | None
    """The TOML settings file; None means built-in defaults (no SYNC_SETTINGS_FILE and no ./sync.toml)."""
    log_level: str = "INFO"
    log_format: str = "text"
    """LOG_FORMAT: `text` (one readable line per event) or `json` (one JSON object per line, for log shippers)."""
    sync_target: str = "agent"
    """SYNC_TARGET: agent (each person's own participant), customer (the customer's participant of their calls,
    where flows, scripts and screen pops read), or both."""
    customer_key_prefix: str = "slack.agent."
    """CUSTOMER_KEY_PREFIX: on the customer's participant it replaces the attribute prefix (slack.title becomes
    slack.agent.title), so flows tell the person's data from the customer's."""


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
    """Genesys settings from the environment; every missing or malformed one is named in one ConfigError."""
    get = {name: environ.get(name, "").strip() for name in (
        "GENESYS_REGION", "GENESYS_API_URL", "GENESYS_LOGIN_URL", "GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET",
        "GENESYS_REQUESTS_PER_MINUTE",
    )}
    problems = []
    if not get["GENESYS_REGION"] and not get["GENESYS_API_URL"]:
        problems.append("GENESYS_REGION: not set; the Genesys Cloud org's region, as its domain (mypurecloud.com, "
                        "mypurecloud.ie, usw2.pure.cloud, …) or SDK key (us_east_1, eu_west_1, …)")
    for name in ("GENESYS_CLIENT_ID", "GENESYS_CLIENT_SECRET"):
        if not get[name]:
            problems.append(f"{name}: not set; the {name.rsplit('_', 1)[1].lower()} of an OAuth client with the "
                            "Client Credentials grant (Genesys Cloud Admin > Integrations > OAuth)")
    raw_rate = get["GENESYS_REQUESTS_PER_MINUTE"] or "300"
    rate = int(raw_rate) if raw_rate.isdigit() else 0
    if not 1 <= rate <= 100_000:
        problems.append(f"GENESYS_REQUESTS_PER_MINUTE: {raw_rate!r} is not a whole number from 1 to 100000")
    if problems:
        raise ConfigError(*problems)
    return GenesysSettings(
        region=get["GENESYS_REGION"] or None, api_url=get["GENESYS_API_URL"] or None,
        login_url=get["GENESYS_LOGIN_URL"] or None, client_id=get["GENESYS_CLIENT_ID"],
        client_secret=get["GENESYS_CLIENT_SECRET"], requests_per_minute=rate,
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
    audit_retention_days: int = 30
    """Audit rows older than this are deleted (AUDIT_RETENTION_DAYS, formerly RETENTION_DAYS)."""
    event_retention_days: int = 7
    """Recorded Slack event ids older than this are deleted (EVENT_RETENTION_DAYS)."""
    allowed_teams: AllowedTeams | None = None
    """SLACK_ALLOWED_TEAMS; always set with OAuth. None: one workspace with the setting left empty (its bot token
    decides the workspace)."""
    health_details: bool = False
    """HEALTH_DETAILS: /healthz names where the database is and the OAuth client ids; off, it names neither."""
    push: bool = True
    """GENESYS_PUSH: Genesys' notifications bring new calls at once; off, only the poll finds them."""
    push_poll_interval_s: float = 60.0
    """PUSH_POLL_INTERVAL_SECONDS: the poll's interval while push is healthy (a safety net)."""

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


_SLACK_TEAM_ID = re.compile(r"[TE][A-Z0-9]{2,}")
_ALLOWED_TEAMS_HELP = ("the Slack workspace ids (T…) or Enterprise Grid organisation ids (E…) allowed to use the "
                       "app, comma or space separated, such as T0123ABCD (a refused install names its workspace's id)")


@dataclass(frozen=True, slots=True)
class AllowedTeams:
    """SLACK_ALLOWED_TEAMS: the workspaces (T…) and Enterprise Grid organisations (E…) the app serves.

    Members are matched by e-mail to Genesys users and written onto live calls, so a workspace the operator does not
    know must not be able to install the app and take part; `*` (`any_team`) is the explicit opposite.
    """

    ids: frozenset[str] = frozenset()
    any_team: bool = False

    def allows(self, enterprise_id: str | None, team_id: str | None) -> bool:
        """Whether a request or installation of this workspace (of this Grid organisation, if any) is served."""
        if self.any_team:
            return True
        return bool(team_id and team_id in self.ids) or bool(enterprise_id and enterprise_id in self.ids)

    def describe(self) -> str:
        return "any workspace (*)" if self.any_team else ", ".join(sorted(self.ids))


def _allowed_teams(raw: str, *, oauth: bool, problems: list[str]) -> AllowedTeams | None:
    """SLACK_ALLOWED_TEAMS: required with OAuth; with one workspace it may stay empty (None)."""
    parts = raw.replace(",", " ").split()
    if not parts:
        if oauth:
            problems.append(f"SLACK_ALLOWED_TEAMS: not set; installing through OAuth needs {_ALLOWED_TEAMS_HELP}, "
                            "or * to let any workspace install the app")
        return None
    if "*" in parts:
        if len(parts) > 1:
            problems.append("SLACK_ALLOWED_TEAMS: * allows every workspace, so it stands alone; list the ids "
                            "without *, or set * only")
        return AllowedTeams(any_team=True)
    malformed = [part for part in parts if not _SLACK_TEAM_ID.fullmatch(part)]
    if malformed:
        problems.append(f"SLACK_ALLOWED_TEAMS: {', '.join(repr(part) for part in malformed)} "
                        f"{'is not an id' if len(malformed) == 1 else 'are not ids'}; it takes {_ALLOWED_TEAMS_HELP}")
    return AllowedTeams(frozenset(parts))


def read_service_settings(environ: Mapping[str, str]) -> ServiceSettings:
    """Settings of the running app; every missing, malformed or conflicting one is named in one ConfigError.

    The Slack mode is decided here, from non-empty values only: a `.env` copied from `.env.example` (or
    `docker run --env-file`) carries every name, most of them empty, and an empty one means "not set".
    """
    get = {name: environ.get(name, "").strip() for name in (
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET",
        "SLACK_REDIRECT_URI", "SLACK_API_URL", "PORT", "DATABASE_URL", "SYNC_ADMINS", "POLL_INTERVAL_SECONDS",
        "REFRESH_INTERVAL_HOURS", "AUDIT_RETENTION_DAYS", "EVENT_RETENTION_DAYS", "RETENTION_DAYS",
        "SLACK_ALLOWED_TEAMS", "HEALTH_DETAILS", "GENESYS_PUSH", "PUSH_POLL_INTERVAL_SECONDS",
    )}
    problems: list[str] = []
    oauth_names = [name for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if get[name]]
    oauth = None
    if oauth_names and get["SLACK_BOT_TOKEN"]:
        problems.append(
            f"{' and '.join(oauth_names)} and SLACK_BOT_TOKEN are both set: use SLACK_BOT_TOKEN for one workspace, "
            "or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install into many workspaces through Slack OAuth, not both"
        )
    elif oauth_names:
        for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            if not get[name]:
                problems.append(f"{name}: not set; installing into many workspaces needs both SLACK_CLIENT_ID and "
                                "SLACK_CLIENT_SECRET (Basic Information > App Credentials)")
        redirect = get["SLACK_REDIRECT_URI"] or None
        if redirect is not None and not redirect.startswith(("https://", "http://")):
            problems.append(f"SLACK_REDIRECT_URI: {redirect!r} is not a URL; use the Redirect URL of the app's "
                            "OAuth & Permissions page (https://…/slack/oauth_redirect), or leave it empty")
        oauth = SlackOAuthSettings(get["SLACK_CLIENT_ID"], get["SLACK_CLIENT_SECRET"], redirect)
    elif not get["SLACK_BOT_TOKEN"]:
        problems.append("SLACK_BOT_TOKEN: not set; the Bot User OAuth Token (the Slack app's Install App page, "
                        "starts with xoxb-)")
    elif not get["SLACK_BOT_TOKEN"].startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: a bot token starts with xoxb- (Install App > Bot User OAuth Token)")
    if not get["SLACK_SIGNING_SECRET"]:
        problems.append("SLACK_SIGNING_SECRET: not set; the Signing Secret (the Slack app's Basic Information > "
                        "App Credentials)")
    if get["SLACK_APP_TOKEN"] and not get["SLACK_APP_TOKEN"].startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: an app-level token starts with xapp- (Basic Information > App-Level "
                        "Tokens, scope connections:write); leave it empty to serve HTTP instead")
    port = _number(get["PORT"] or "3000", "PORT", int, 1, 65535, problems)
    poll = _number(get["POLL_INTERVAL_SECONDS"] or "5", "POLL_INTERVAL_SECONDS", float, 1, 3600, problems)
    refresh = _number(get["REFRESH_INTERVAL_HOURS"] or "6", "REFRESH_INTERVAL_HOURS", float, 0.01, 24 * 30, problems)
    audit_days = _audit_retention_days(get["AUDIT_RETENTION_DAYS"], get["RETENTION_DAYS"], problems)
    event_days = _days("EVENT_RETENTION_DAYS", get["EVENT_RETENTION_DAYS"], 7, "recorded Slack event ids", problems)
    allowed_teams = _allowed_teams(get["SLACK_ALLOWED_TEAMS"], oauth=bool(oauth_names), problems=problems)
    health_details = _switch(get["HEALTH_DETAILS"], "HEALTH_DETAILS", problems,
                             "whether /healthz names the database's location, user and host and the OAuth client ids")
    push = _switch(get["GENESYS_PUSH"], "GENESYS_PUSH", problems,
                   "whether Genesys Cloud's notifications bring new calls at once (on, the default) or only the "
                   "poll finds them (off)", default=True)
    push_poll = _number(get["PUSH_POLL_INTERVAL_SECONDS"] or "60", "PUSH_POLL_INTERVAL_SECONDS", float, 1, 3600,
                        problems)
    if problems:
        raise ConfigError(*problems)
    return ServiceSettings(
        bot_token=get["SLACK_BOT_TOKEN"] or None, signing_secret=get["SLACK_SIGNING_SECRET"],
        app_token=get["SLACK_APP_TOKEN"] or None, api_url=get["SLACK_API_URL"] or None, port=int(port),
        database_url=get["DATABASE_URL"] or DEFAULT_DATABASE_URL,
        admins=frozenset(part for part in get["SYNC_ADMINS"].replace(",", " ").split() if part),
        poll_interval_s=poll, refresh_interval_s=refresh * 3600, oauth=oauth,
        audit_retention_days=audit_days, event_retention_days=event_days, allowed_teams=allowed_teams,
        health_details=health_details, push=push, push_poll_interval_s=push_poll,
    )


_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _switch(raw: str, name: str, problems: list[str], meaning: str, *, default: bool = False) -> bool:
    """An on/off setting: 1, true, yes or on; 0, false, no or off (any case); empty is `default`. Anything else
    is a problem."""
    if not raw:
        return default
    if raw.lower() in _ON:
        return True
    if raw.lower() not in _OFF:
        problems.append(f"{name}: {raw!r} is neither 1 nor 0 (also true/false, yes/no, on/off); {meaning} "
                        f"(default {int(default)})")
    return False


def _audit_retention_days(raw: str, legacy: str, problems: list[str]) -> int:
    """AUDIT_RETENTION_DAYS, or RETENTION_DAYS (its name before events got their own setting, still read so an
    existing .env keeps its audit retention); both set to different values is refused rather than guessed."""
    if raw and legacy and raw != legacy:
        problems.append(f"AUDIT_RETENTION_DAYS ({raw!r}) and RETENTION_DAYS ({legacy!r}) are both set: RETENTION_DAYS "
                        "is the older name of AUDIT_RETENTION_DAYS; keep only AUDIT_RETENTION_DAYS")
        return 30
    if raw or not legacy:
        return _days("AUDIT_RETENTION_DAYS", raw, 30, "audit rows", problems)
    return _days("RETENTION_DAYS", legacy, 30, "audit rows (RETENTION_DAYS is the older name of "
                 "AUDIT_RETENTION_DAYS)", problems)


def _days(name: str, raw: str, default: int, what: str, problems: list[str]) -> int:
    """A retention in whole days, 1 to 3650 (ten years); empty means `default`."""
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 3650:
        problems.append(f"{name}: {raw!r} is not a whole number of days from 1 to 3650; how long {what} are kept "
                        f"(default {default})")
        return default
    return int(raw)


def _number(raw: str, name: str, kind: type[int] | type[float], low: float, high: float,
            problems: list[str]) -> float:
    """`raw` as a number within low..high; otherwise a problem naming `name`, and `low` to go on with."""
    try:
        value = kind(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a number")
        return low
    if not low <= value <= high:
        problems.append(f"{name}: {raw!r} is outside {low:g} to {high:g}")
        return low
    return value


SYNC_TARGETS = ("agent", "customer", "both")


def read_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment (`read_environment` puts the working directory's `.env` under it)."""
    problems: list[str] = []
    log_level = _choice(environ, "LOG_LEVEL", _LOG_LEVELS, "INFO", problems, upper=True)
    log_format = _choice(environ, "LOG_FORMAT", LOG_FORMATS, "text", problems,
                         meaning="text (one readable line per event, the default) or json (one JSON object per line, "
                                 "for log shippers)")
    target = _choice(environ, "SYNC_TARGET", SYNC_TARGETS, "agent", problems,
                     meaning="where attributes are written: each person's own participant (agent, the default), the "
                             "customer's participant of their calls, which flows, scripts and screen pops read "
                             "(customer), or both")
    prefix = environ.get("CUSTOMER_KEY_PREFIX", "").strip() or "slack.agent."
    if len(prefix) > 64 or any(ord(character) < 32 or ord(character) == 127 or character.isspace()
                               for character in prefix):
        problems.append(f"CUSTOMER_KEY_PREFIX: {prefix!r} is not a key prefix (at most 64 characters, no spaces or "
                        "control characters); it starts the keys on the customer's participant, e.g. slack.agent.")
    configured = environ.get("SYNC_SETTINGS_FILE", "").strip()
    path = DEFAULT_SETTINGS_FILE if DEFAULT_SETTINGS_FILE.is_file() else None
    if configured:
        path = Path(configured)
        if not path.is_file():
            problems.append(f"SYNC_SETTINGS_FILE: {configured!r} is not a readable file (fix the path or unset it)")
    if problems:
        raise ConfigError(*problems)
    return Settings(path, log_level, log_format, target, prefix)


def _choice(environ: Mapping[str, str], name: str, choices: Sequence[str], default: str, problems: list[str], *,
            upper: bool = False, meaning: str = "") -> str:
    """One of `choices` (any case; empty is `default`); anything else is a problem naming them and, with `meaning`,
    what the setting decides."""
    raw = environ.get(name, "").strip()
    value = (raw.upper() if upper else raw.lower()) or default
    if value not in choices:
        problems.append(f"{name}: {value!r} is not one of {', '.join(choices)}" + (f"; {meaning}" if meaning else ""))
    return value


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


def read_database_url(environ: Mapping[str, str]) -> str:
    """DATABASE_URL alone (the commands that only read the store); `open_store` checks it."""
    return environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL


def secrets_of(service: ServiceSettings | None, genesys: GenesysSettings | None,
               database_url: str | None = None) -> tuple[str, ...]:
    """The secret values the settings hold, for `configure_logging` to keep out of every log line."""
    values = [genesys.client_secret if genesys else None, *(url_secrets(database_url) if database_url else ())]
    if service is not None:
        values += [service.bot_token, service.signing_secret, service.app_token,
                   service.oauth.client_secret if service.oauth else None, *url_secrets(service.database_url)]
    return tuple(value for value in values if value)


LIBRARY_LOG_FLOORS: Mapping[str, int] = {
    # DEBUG and INFO: every request's body, e-mail addresses included; a refused request's too. Warnings still show.
    "slack_bolt": logging.WARNING,
    # DEBUG: whole Web API request and response bodies (the bot token oauth.v2.access answers, users.profile.get's
    # e-mail and phone) and Socket Mode messages (whole events). INFO: connections and retries.
    "slack_sdk": logging.INFO,
    # ... except the Web API client's request and answer, which SlackRequestSummary turns into one line each.
    "slack_sdk.web.base_client": logging.DEBUG,
    # DEBUG: each connection step with the response headers; httpx's one line per request says what matters.
    "httpcore": logging.INFO,
    "psycopg": logging.INFO,  # DEBUG: connection attempts and notices; nothing an operator needs at DEBUG
    "waitress": logging.INFO,
    "waitress.queue": logging.ERROR,  # "task queue depth" per request under a burst
    # DEBUG: the handshake's path (a notification channel's whole id, which lets anyone read its events) and every
    # frame (whole conversations, phone numbers). The app's own lines say what happens to its sockets.
    "websockets": logging.INFO,
}
"""The lowest level each library may log at, whatever LOG_LEVEL says: below it they log bodies or noise."""


TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, secrets: Iterable[str] = (), log_format: str = "text") -> None:
    """One readable line per event on standard error (`log_format` json: one JSON object per line, `JsonLogLines`);
    at DEBUG request lines and timings, never bodies.

    Libraries are clamped to `LIBRARY_LOG_FLOORS`, and every line, the app's too, passes `LogRedaction` (known
    `secrets`, Slack tokens, e-mail addresses, and secret or personal fields in logged dicts and JSON) as a second
    line of defence: a library may log a body at a level it is allowed, e.g. Bolt's warning for an unhandled request.
    The redaction is a filter on the handlers, so it runs before either format sees the line.
    """
    logging.basicConfig(level=level, handlers=[_handler_of_the_app()])
    app_level = logging.getLevelName(level)
    for name, floor in LIBRARY_LOG_FLOORS.items():
        logging.getLogger(name).setLevel(max(app_level, floor))  # spares the libraries formatting what is dropped
    # httpx logs every request at INFO: one line per Genesys call would drown the app's one line per write.
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    _add_filter_once(logging.getLogger("slack_sdk.web.base_client"), SlackRequestSummary())
    for handler in logging.getLogger().handlers:
        # On the handlers too: Bolt gives each App a logger with the root's level set on it, below any clamp.
        _add_filter_once(handler, LibraryFloors(LIBRARY_LOG_FLOORS))
        _add_filter_once(handler, LogRedaction(secrets))
        if isinstance(handler.formatter, TextLogLines | JsonLogLines):  # the app's own, not a test runner's
            handler.setFormatter(JsonLogLines() if log_format == "json" else TextLogLines())


class TextLogLines(logging.Formatter):
    """LOG_FORMAT=text: `time LEVEL logger: message`, the app's own formatter (so a later call can tell its handler)."""

    def __init__(self) -> None:
        super().__init__(TEXT_LOG_FORMAT)


def _handler_of_the_app() -> logging.Handler:
    handler = logging.StreamHandler()
    handler.setFormatter(TextLogLines())
    return handler


def _add_filter_once(target: logging.Filterer, new: logging.Filter) -> None:
    """Add `new`, replacing a filter of its class added by an earlier call (tests configure logging repeatedly)."""
    for existing in [f for f in target.filters if type(f) is type(new)]:
        target.removeFilter(existing)
    target.addFilter(new)


class LibraryFloors(logging.Filter):
    """Drops a library's line below its floor, whichever of its loggers logged it and whatever level that logger
    was given: the most specific floor wins (slack_sdk.web.base_client over slack_sdk)."""

    def __init__(self, floors: Mapping[str, int]) -> None:
        super().__init__()
        self._floors = sorted(floors.items(), key=lambda item: len(item[0]), reverse=True)

    def floor(self, logger_name: str) -> int:
        for name, floor in self._floors:
            if logger_name == name or logger_name.startswith((f"{name}.", f"{name}:")):
                return floor
        return logging.NOTSET

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor(record.name)


class SlackRequestSummary(logging.Filter):
    """slack_sdk's DEBUG request and response lines, which carry whole bodies, as one line each without them:
    "Slack API request: https://slack.com/api/users.profile.get" and "Slack API answered 200 in 41 ms".
    WebClient calls are synchronous, so the answer comes on the thread that sent the request."""

    _REQUEST = re.compile(r"Sending a request - url: (\S+?),")
    _ANSWER = re.compile(r"Received the following response - status: (\d+)")

    def __init__(self) -> None:
        super().__init__()
        self._started = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            return True
        message = record.getMessage()
        if (request := self._REQUEST.match(message)) is not None:
            self._started.at = time.monotonic()
            return _rewrite(record, "Slack API request: %s", request.group(1))
        if (answer := self._ANSWER.match(message)) is not None:
            started = getattr(self._started, "at", None)
            took = f" in {(time.monotonic() - started) * 1000:.0f} ms" if started is not None else ""
            return _rewrite(record, "Slack API answered %s%s", answer.group(1), took)
        return False  # any other DEBUG line of the client: not known to be free of bodies


def _rewrite(record: logging.LogRecord, message: str, *args: object) -> bool:
    record.msg, record.args = message, args
    return True


# Fields whose values are secret or personal wherever a dict or JSON is logged: 'email': '…', "phone": "…".
_SENSITIVE_FIELD = re.compile(
    r"""(["']?\b(?:e-?mail|phone|skype|(?:access_|refresh_|bot_|app_|user_)?token|client_secret|password|"""
    r"""signing_secret|secret)["']?\s*[:=]\s*)(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,&}'"]+)""",
    re.IGNORECASE)
_SLACK_TOKEN = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")
# An address, not a URL's user info (postgresql://user@host): no "/" right before it.
_CHANNEL_ID = re.compile(r"(/channels/(?:streaming-\d+-)?)([A-Za-z0-9]{8})[A-Za-z0-9-]+")
"""A notification channel's id in a URL (httpx's request lines): anyone who has it can read the channel's events."""
_EMAIL = re.compile(r"(?<![/\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MIN_SECRET_LENGTH = 8
"""Known secrets shorter than this are not cut out of every line: they would shred ordinary words."""


class LogRedaction(logging.Filter):
    """Every line (message, traceback) with secrets and personal data replaced by ***: the `secrets` the settings
    hold, Slack tokens, e-mail addresses, and the values of secret or personal fields in logged dicts and JSON."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = _SLACK_TOKEN.sub(r"\1-***", text)
        text = _SENSITIVE_FIELD.sub(r"\1***", text)
        text = _CHANNEL_ID.sub(r"\1\2…", text)
        return _EMAIL.sub("***@***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in structured_fields(record).items():
            if not (isinstance(value, int | float | bool) or value is None):  # a dict's text may hold a secret too
                setattr(record, name, self.redact(str(value)))
        return True


_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def structured_fields(record: logging.LogRecord) -> dict[str, object]:
    """What a log call added to its line besides the message (`extra=`, such as `error_id`)."""
    return {name: value for name, value in vars(record).items()
            if name not in _STANDARD_RECORD_FIELDS and not name.startswith("_")}


class JsonLogLines(logging.Formatter):
    """LOG_FORMAT=json: each line one JSON object with `time` (UTC, ISO 8601), `level`, `logger` and `message` (the
    text line's, word for word), the line's structured fields (`error_id`, …), and `exception` for a traceback.

    Redaction happened before (`LogRedaction`, a filter on the handler), so both formats carry the same content."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        for name, value in structured_fields(record).items():  # strings by now, but for numbers (LogRedaction)
            line.setdefault(name, value if isinstance(value, str | int | float | bool) or value is None else str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Environment:
    """Where settings come from: the process environment over the working directory's `.env`."""

    values: Mapping[str, str]
    dotenv_path: Path
    """The `.env` file looked for (in the working directory)."""
    dotenv_found: bool


def read_environment(directory: Path) -> Environment:
    """The environment over `directory/.env` (real environment variables win), read here and nowhere else.

    `.env` is read into this value, not into the process environment, so no library sees it on its own.
    """
    dotenv_path = directory / ".env"
    found = dotenv_path.is_file()
    file_values: dict[str, str] = {}
    if found:
        try:
            file_values = {name: value for name, value in dotenv_values(dotenv_path).items() if value is not None}
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            raise ConfigError(f"{dotenv_path}: cannot be read ({reason}); fix its permissions or encoding "
                              "(UTF-8), or remove it and set the settings in the environment") from None
    return Environment({**file_values, **os.environ}, dotenv_path, found)


LIBRARY_READ_PREFIXES = ("SLACK_",)
"""Bolt and slack_sdk read some SLACK_* variables by themselves (an empty SLACK_CLIENT_ID turns Bolt's OAuth on)."""


def withhold_from_libraries() -> None:
    """Remove the variables libraries would read on their own from the process environment, once `config` read
    them: every value the app's libraries need is passed to them explicitly, so nothing else decides the mode."""
    for name in [name for name in os.environ if name.startswith(LIBRARY_READ_PREFIXES)]:
        del os.environ[name]


def describe_problems(command: str, error: ConfigError, environment: Environment) -> str:
    """The one answer to a configuration that cannot run: every problem, and where the settings came from."""
    count = len(error.problems)
    lines = [f"{command}: {count} setting{'s' if count != 1 else ''} to fix:" if count > 1
             else f"{command}: configuration:"]
    lines += [f"  {problem}" for problem in error.problems]
    if environment.dotenv_found:
        lines.append(f"Settings were read from {environment.dotenv_path} (variables set in the environment win); "
                     "fix them there. .env.example describes each setting.")
    else:
        lines.append(f"No .env file in {environment.dotenv_path.parent} (the working directory): copy .env.example "
                     "to .env there and fill it in, or set the settings in the environment.")
    return "\n".join(lines)
