"""Settings read at the edge: the environment, .env.example and the Genesys settings."""

from __future__ import annotations

import logging
import re

import pytest

from config import (
    AllowedTeams,
    ConfigError,
    configure_logging,
    read_genesys_settings,
    read_service_settings,
    read_settings,
)
from tests.conftest import REPO

GOOD = {"GENESYS_REGION": "mypurecloud.ie", "GENESYS_CLIENT_ID": "id", "GENESYS_CLIENT_SECRET": "secret"}


def test_env_example_lists_every_setting_the_code_reads() -> None:
    """Every environment variable the code reads has a line in .env.example."""
    sources = "\n".join(path.read_text() for path in (REPO / "config.py", REPO / "app.py"))
    names = set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|PORT)"', sources))
    read = names - {"LOG_LEVELS"}
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    assert read
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"


def test_genesys_settings_are_read() -> None:
    """A complete environment gives the settings, with the secret out of the repr."""
    settings = read_genesys_settings({**GOOD, "GENESYS_REQUESTS_PER_MINUTE": "120"})
    assert (settings.region, settings.client_id, settings.requests_per_minute) == ("mypurecloud.ie", "id", 120)
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"GENESYS_CLIENT_SECRET": ""}, "GENESYS_CLIENT_SECRET: not set"),
        ({"GENESYS_REGION": "", "GENESYS_CLIENT_ID": " "}, "GENESYS_REGION: not set"),
        ({"GENESYS_REGION": "", "GENESYS_CLIENT_ID": " "}, "GENESYS_CLIENT_ID: not set"),
        ({"GENESYS_REQUESTS_PER_MINUTE": "fast"}, "GENESYS_REQUESTS_PER_MINUTE: 'fast' is not a whole number"),
        ({"GENESYS_REQUESTS_PER_MINUTE": "0"}, "GENESYS_REQUESTS_PER_MINUTE: '0'"),
    ],
)
def test_bad_genesys_settings_are_named(overrides: dict[str, str], fragment: str) -> None:
    """Each missing or malformed Genesys setting is named."""
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        read_genesys_settings({**GOOD, **overrides})


def test_an_api_url_stands_in_for_the_region() -> None:
    """GENESYS_API_URL without GENESYS_REGION is enough (sandboxes, tests)."""
    settings = read_genesys_settings({**GOOD, "GENESYS_REGION": "", "GENESYS_API_URL": "http://127.0.0.1:9"})
    assert settings.region is None
    assert settings.api_url == "http://127.0.0.1:9"


def test_bad_log_level_is_named() -> None:
    """LOG_LEVEL must be a known level."""
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        read_settings({"LOG_LEVEL": "LOUD"})


SINGLE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "signing"}
OAUTH = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "client-secret", "SLACK_SIGNING_SECRET": "signing",
         "SLACK_ALLOWED_TEAMS": "T0ACME"}


def test_one_workspace_needs_a_bot_token() -> None:
    """SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: one workspace, no OAuth."""
    settings = read_service_settings(SINGLE)
    assert settings.bot_token == "xoxb-1"
    assert settings.oauth is None


def test_oauth_settings_install_into_many_workspaces() -> None:
    """The OAuth client instead of a bot token: many workspaces, with the secret out of the repr."""
    settings = read_service_settings({**OAUTH, "SLACK_REDIRECT_URI": "https://sync.example.com/slack/oauth_redirect"})
    assert settings.bot_token is None
    assert settings.oauth is not None
    assert settings.oauth.client_id == "1111.2222"
    assert settings.oauth.redirect_uri == "https://sync.example.com/slack/oauth_redirect"
    assert "client-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({**OAUTH, "SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_CLIENT_SECRET and SLACK_BOT_TOKEN are both set"),
        ({**SINGLE, "SLACK_CLIENT_ID": "1111.2222"}, "SLACK_CLIENT_ID and SLACK_BOT_TOKEN are both set"),
        ({**OAUTH, "SLACK_CLIENT_SECRET": ""}, "SLACK_CLIENT_SECRET: not set; installing into many workspaces"),
        ({**SINGLE, "SLACK_CLIENT_ID": "", "SLACK_CLIENT_SECRET": " "}, None),
        ({**OAUTH, "SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET: not set"),
        ({**OAUTH, "SLACK_REDIRECT_URI": "sync.example.com"}, "SLACK_REDIRECT_URI: 'sync.example.com' is not a URL"),
        ({"SLACK_SIGNING_SECRET": "signing"}, "SLACK_BOT_TOKEN: not set"),
        ({**SINGLE, "SLACK_BOT_TOKEN": "xoxp-1"}, "SLACK_BOT_TOKEN: a bot token starts with xoxb-"),
    ],
)
def test_mixed_or_incomplete_slack_settings_are_refused(environ: dict[str, str], fragment: str | None) -> None:
    """A mixed configuration, or an incomplete one, is refused with the settings named; empty ones are unset."""
    if fragment is None:
        assert read_service_settings(environ).oauth is None
        return
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        read_service_settings(environ)


@pytest.mark.parametrize(("level", "httpx_level"), [("INFO", logging.WARNING), ("DEBUG", logging.DEBUG)])
def test_httpx_request_lines_only_at_debug(level: str, httpx_level: int) -> None:
    """Each Genesys request is logged by httpx only when LOG_LEVEL=DEBUG."""
    configure_logging(level)
    assert logging.getLogger("httpx").level == httpx_level


@pytest.mark.parametrize(
    ("environ", "audit", "events"),
    [({}, 30, 7), ({"AUDIT_RETENTION_DAYS": "", "EVENT_RETENTION_DAYS": ""}, 30, 7),
     ({"AUDIT_RETENTION_DAYS": " 90 ", "EVENT_RETENTION_DAYS": "1"}, 90, 1),
     ({"AUDIT_RETENTION_DAYS": "3650", "EVENT_RETENTION_DAYS": "3650"}, 3650, 3650),
     ({"RETENTION_DAYS": "60"}, 60, 7), ({"RETENTION_DAYS": "60", "AUDIT_RETENTION_DAYS": "60"}, 60, 7),
     ({"RETENTION_DAYS": "", "AUDIT_RETENTION_DAYS": "45"}, 45, 7)],
)
def test_retention_days_are_read(environ: dict[str, str], audit: int, events: int) -> None:
    """Audit (default 30) and event (default 7) retentions in whole days; RETENTION_DAYS still sets the audit one."""
    settings = read_service_settings({**SINGLE, **environ})
    assert (settings.audit_retention_days, settings.event_retention_days) == (audit, events)


@pytest.mark.parametrize("name", ["AUDIT_RETENTION_DAYS", "EVENT_RETENTION_DAYS", "RETENTION_DAYS"])
@pytest.mark.parametrize("raw", ["0", "3651", "-5", "7.5", "30d", "thirty", "²"])
def test_bad_retention_days_are_named(name: str, raw: str) -> None:
    """A retention that is not a whole number from 1 to 3650 is refused naming the setting and the range."""
    with pytest.raises(ConfigError, match=rf"^{name}: .* is not a whole number of days from 1 to 3650"):
        read_service_settings({**SINGLE, name: raw})


def test_both_retention_names_with_different_values_are_refused_with_every_other_problem() -> None:
    """RETENTION_DAYS and AUDIT_RETENTION_DAYS disagreeing is named, in the same answer as a bad event retention."""
    with pytest.raises(ConfigError) as refused:
        read_service_settings({**SINGLE, "RETENTION_DAYS": "30", "AUDIT_RETENTION_DAYS": "90",
                               "EVENT_RETENTION_DAYS": "0"})
    first_words = [problem.split(" ")[0] for problem in refused.value.problems]
    assert first_words == ["AUDIT_RETENTION_DAYS", "EVENT_RETENTION_DAYS:"]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({**OAUTH, "SLACK_ALLOWED_TEAMS": "T0ACME"}, AllowedTeams(frozenset({"T0ACME"}))),
        ({**OAUTH, "SLACK_ALLOWED_TEAMS": " T0ACME,E0GRID  T0GLOBEX, "},
         AllowedTeams(frozenset({"T0ACME", "E0GRID", "T0GLOBEX"}))),
        ({**OAUTH, "SLACK_ALLOWED_TEAMS": "*"}, AllowedTeams(any_team=True)),
        ({**OAUTH, "SLACK_ALLOWED_TEAMS": " * "}, AllowedTeams(any_team=True)),
        (SINGLE, None),
        ({**SINGLE, "SLACK_ALLOWED_TEAMS": ""}, None),
        ({**SINGLE, "SLACK_ALLOWED_TEAMS": "T0ACME"}, AllowedTeams(frozenset({"T0ACME"}))),
    ],
)
def test_allowed_teams_are_read(environ: dict[str, str], expected: AllowedTeams | None) -> None:
    """SLACK_ALLOWED_TEAMS takes T…/E… ids separated by commas or spaces, or * alone; one workspace may leave it out."""
    assert read_service_settings(environ).allowed_teams == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (None, "SLACK_ALLOWED_TEAMS: not set; installing through OAuth needs the Slack workspace ids (T…)"),
        ("", "or * to let any workspace install the app"),
        (" , ", "SLACK_ALLOWED_TEAMS: not set"),
        ("acme", "SLACK_ALLOWED_TEAMS: 'acme' is not an id"),
        ("T0ACME t0globex U0ADA", "SLACK_ALLOWED_TEAMS: 't0globex', 'U0ADA' are not ids"),
        ("T", "SLACK_ALLOWED_TEAMS: 'T' is not an id"),
        ("T0ACME *", "SLACK_ALLOWED_TEAMS: * allows every workspace, so it stands alone"),
    ],
)
def test_missing_or_malformed_allowed_teams_are_named(raw: str | None, fragment: str) -> None:
    """OAuth without SLACK_ALLOWED_TEAMS, an id not T…/E…, or * mixed with ids is refused, saying what to put."""
    environ = {k: v for k, v in OAUTH.items() if k != "SLACK_ALLOWED_TEAMS"}
    if raw is not None:
        environ["SLACK_ALLOWED_TEAMS"] = raw
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        read_service_settings(environ)


def test_missing_allowed_teams_is_named_with_the_other_problems() -> None:
    """The missing allow-list is one problem among the others in the one ConfigError."""
    with pytest.raises(ConfigError) as raised:
        read_service_settings({"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "s", "PORT": "0"})
    named = [problem.split(":")[0] for problem in raised.value.problems]
    assert named == ["SLACK_SIGNING_SECRET", "PORT", "SLACK_ALLOWED_TEAMS"]


@pytest.mark.parametrize(
    ("allowed", "enterprise_id", "team_id", "expected"),
    [
        (AllowedTeams(frozenset({"T1"})), None, "T1", True),
        (AllowedTeams(frozenset({"T1"})), None, "T2", False),
        (AllowedTeams(frozenset({"T1"})), "E1", "T2", False),
        (AllowedTeams(frozenset({"E1"})), "E1", "T2", True),
        (AllowedTeams(frozenset({"E1"})), "E1", None, True),
        (AllowedTeams(frozenset({"T1"})), None, None, False),
        (AllowedTeams(any_team=True), None, "T9", True),
    ],
)
def test_allowed_teams_allow_listed_workspaces_and_grid_organisations(
        allowed: AllowedTeams, enterprise_id: str | None, team_id: str | None, expected: bool) -> None:
    """A workspace is allowed by its own id, or by its Enterprise Grid organisation's; * allows any."""
    assert allowed.allows(enterprise_id, team_id) is expected


@pytest.mark.parametrize(("raw", "shown"), [(None, False), ("", False), ("0", False), ("no", False),
                                            ("OFF", False), ("1", True), ("true", True), (" Yes ", True)])
def test_health_details_is_an_on_off_setting(raw: str | None, shown: bool) -> None:
    """HEALTH_DETAILS is off unless set to 1, true, yes or on (any case)."""
    environ = SINGLE if raw is None else {**SINGLE, "HEALTH_DETAILS": raw}
    assert read_service_settings(environ).health_details is shown


def test_a_bad_health_details_is_named_with_every_other_problem() -> None:
    """HEALTH_DETAILS=2 is named in the same ConfigError as a missing signing secret."""
    with pytest.raises(ConfigError) as raised:
        read_service_settings({"SLACK_BOT_TOKEN": "xoxb-1", "HEALTH_DETAILS": "2"})
    assert [problem.split(":")[0] for problem in raised.value.problems] == ["SLACK_SIGNING_SECRET", "HEALTH_DETAILS"]


@pytest.mark.parametrize(("environ", "target", "prefix"), [
    ({}, "agent", "slack.agent."),
    ({"SYNC_TARGET": "Customer", "CUSTOMER_KEY_PREFIX": " agent_ "}, "customer", "agent_"),
    ({"SYNC_TARGET": "both", "CUSTOMER_KEY_PREFIX": ""}, "both", "slack.agent."),
])
def test_sync_target_and_customer_key_prefix_are_read(environ: dict[str, str], target: str, prefix: str) -> None:
    """SYNC_TARGET (any case; empty is agent) and CUSTOMER_KEY_PREFIX (trimmed; empty is slack.agent.)."""
    settings = read_settings(environ)
    assert (settings.sync_target, settings.customer_key_prefix) == (target, prefix)


def test_a_bad_sync_target_and_prefix_are_named_together() -> None:
    """An unknown target and a prefix with a space are both named, with what each setting means."""
    with pytest.raises(ConfigError) as raised:
        read_settings({"SYNC_TARGET": "customers", "CUSTOMER_KEY_PREFIX": "slack agent."})
    assert raised.value.problems[0].startswith("SYNC_TARGET: 'customers' is not one of agent, customer, both;")
    assert raised.value.problems[1].startswith("CUSTOMER_KEY_PREFIX: 'slack agent.' is not a key prefix")
