"""The Bolt app: the Slack side of the service, built from the settings with every listener group registered.

One workspace: the bot token is checked with Slack (`auth.test`) before the app serves anything, and the identity
it names is what `/healthz` and the start-up line report. OAuth: each request's installation authorizes it, and
installs are limited to SLACK_ALLOWED_TEAMS (the refusal page: handlers.install; the request gate:
handlers.workspaces).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from config import ConfigError, ServiceSettings, describe_cause
from handlers import commands, errors, events, home, install, workspaces
from handlers.commands import CommandEngine
from handlers.events import EventObserver, Uninstalled, UserChangeSink
from handlers.home import HomeEngine, HomeTab
from slack_directory import StoreInstallationStore, StoreOAuthStateStore
from sync.render import SlackText

# The start-up lines keep the name of the module they were first logged from, which operators' filters may match.
log = logging.getLogger("app")

BOT_SCOPES = ("commands", "users:read", "users:read.email", "users.profile:read")
"""The bot scopes the OAuth install asks for; manifest.yml lists the same (a test checks)."""


class SlackEngine(UserChangeSink, CommandEngine, HomeEngine, Protocol):
    """What the listeners hand work to (the sync engine)."""


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who the bot token is, as auth.test answered at start (one workspace)."""

    team_id: str
    team: str
    bot_user_id: str
    enterprise_id: str | None = None


class SlackAuthorization:
    """Whether Slack requests can be authorized now: the identity verified at start (one workspace) and whether
    the workspace has since uninstalled the app or revoked its token. OAuth (no identity): each request's
    installation."""

    def __init__(self, identity: SlackIdentity | None) -> None:
        self.identity = identity
        self._revoked = threading.Event()

    def revoke(self) -> None:
        self._revoked.set()

    @property
    def revoked(self) -> bool:
        return self._revoked.is_set()


def verify_bot_token(client: WebClient, service: ServiceSettings) -> SlackIdentity:
    """auth.test with the bot token the app will serve with: a refused or unreachable Slack stops the start."""
    try:
        answer = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error", "unknown_error") if error.response is not None else "unknown_error"
        raise ConfigError(f"SLACK_BOT_TOKEN: Slack refused it at start (auth.test: {code}); copy the Bot User OAuth "
                          "Token again from the app's Install App page (reinstall the app if it was revoked)") from None
    except (OSError, SlackClientError) as error:  # urllib's URLError is an OSError
        where = service.api_url or "https://slack.com/api/"
        raise ConfigError(f"SLACK_API_URL: cannot reach Slack at {where} ({describe_cause(error)}); check the "
                          "network or the URL") from None
    team_id, user_id = answer.get("team_id"), answer.get("user_id")
    if not isinstance(team_id, str) or not isinstance(user_id, str):
        raise ConfigError("SLACK_BOT_TOKEN: auth.test did not name the token's workspace and bot user; use the "
                          "Bot User OAuth Token (xoxb-…), not a user or app-level token")
    team, enterprise_id = answer.get("team"), answer.get("enterprise_id")
    identity = SlackIdentity(team_id, team if isinstance(team, str) else team_id, user_id,
                             enterprise_id if isinstance(enterprise_id, str) and enterprise_id else None)
    # One workspace: SLACK_ALLOWED_TEAMS may stay empty (the token decides); set, it must not contradict the token.
    if service.allowed_teams is not None and not service.allowed_teams.allows(identity.enterprise_id, team_id):
        raise ConfigError(f"SLACK_ALLOWED_TEAMS: the bot token's workspace {identity.team} ({team_id}) is not listed "
                          f"({service.allowed_teams.describe()}); add {team_id}, or leave SLACK_ALLOWED_TEAMS empty "
                          "with one workspace")
    return identity


def build_slack_app(service: ServiceSettings, engine: SlackEngine, client: WebClient, *, uninstalled: Uninstalled,
                    installations: StoreInstallationStore | None = None,
                    oauth_states: StoreOAuthStateStore | None = None,
                    event_observer: EventObserver | None = None, render: SlackText | None = None,
                    home_tab: HomeTab | None = None) -> App:
    """The Bolt app with every listener registered, configured from `service` alone: every value Bolt needs is
    passed here (the SLACK_* variables are withheld from it), so the mode is the one the settings decide.
    One workspace: `client` carries the bot token verified at start. OAuth (`service.oauth`): installs at
    /slack/install, kept in `installations`, tokens looked up per request. `uninstalled(enterprise_id, team_id)`
    when a workspace removes the app or revokes its token; `event_observer` counts user events (metrics).
    `home_tab`: publishes the App Home (without it, app_home_opened is only acknowledged)."""
    oauth_settings = None
    if service.oauth is not None:
        if installations is None or oauth_states is None:
            raise ValueError("installing through OAuth needs an installation store and an OAuth state store")
        oauth_settings = OAuthSettings(
            client_id=service.oauth.client_id, client_secret=service.oauth.client_secret, scopes=list(BOT_SCOPES),
            user_scopes=[], redirect_uri=service.oauth.redirect_uri, installation_store=installations,
            state_store=oauth_states, install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect",
            # A refused workspace's token is revoked with its own token: the tokenless client is enough.
            callback_options=install.callback_options(lambda token: client.auth_revoke(token=token)),
        )
    try:
        # process_before_response: Slack's 200 goes out after a listener recorded the work, so a crash after
        # the answer loses nothing; the slash command does its slow part in a lazy listener after the ack.
        # token_verification_enabled=False: verify_bot_token already ran auth.test with this very token.
        # logger: Bolt copies the level configure_logging gave `slack_bolt` into every logger it builds (without
        # one, the root's), and its lines keep that name.
        app = App(client=client, signing_secret=service.signing_secret, process_before_response=True,
                  oauth_settings=oauth_settings, installation_store=installations,
                  token_verification_enabled=False, logger=logging.getLogger("slack_bolt"))
    except BoltError as error:
        raise ConfigError(f"SLACK_CLIENT_ID: Bolt refused the OAuth settings ({error}); check them") from None
    errors.register(app)
    if service.allowed_teams is not None:
        workspaces.register(app, service.allowed_teams.allows)
    events.register(app, engine, uninstalled=uninstalled, observer=event_observer)
    commands.register(app, engine, admins=service.admins, render=render or SlackText())
    if home_tab is not None:
        home.register(app, home_tab, engine, admins=service.admins)
    else:
        app.event(home.HOME_EVENT)(lambda: None)
    return app


def connect_socket_mode(handler: SocketModeHandler) -> None:
    """Open the Socket Mode connection; a refused app-level token stops the start."""
    try:
        handler.connect()
    except (OSError, SlackClientError) as error:
        raise ConfigError(f"SLACK_APP_TOKEN: could not open the Socket Mode connection ({describe_cause(error)}); "
                          "check the app-level token (scope connections:write)") from None


def log_slack_mode(service: ServiceSettings, authorization: SlackAuthorization) -> None:
    """The start-up line that says which Slack mode the settings chose, and a warning while any workspace may
    install the app."""
    log.info("%s", describe_slack_mode(service, authorization))
    if service.oauth is not None and service.allowed_teams is not None and service.allowed_teams.any_team:
        log.warning("SLACK_ALLOWED_TEAMS=*: any Slack workspace can install the app, and its members are matched "
                    "to your Genesys Cloud users by e-mail; list the allowed workspace ids instead to restrict it")


def describe_slack_mode(service: ServiceSettings, authorization: SlackAuthorization) -> str:
    transport = "Socket Mode" if service.socket_mode else f"HTTP on port {service.port}"
    if authorization.identity is None:
        allowed = service.allowed_teams.describe() if service.allowed_teams is not None else "any workspace"
        return (f"Slack: installable into many workspaces through OAuth (/slack/install), allowed: {allowed}; "
                f"events over {transport}")
    identity = authorization.identity
    return (f"Slack: one workspace, {identity.team} ({identity.team_id}), bot user {identity.bot_user_id}, "
            f"events over {transport}")
