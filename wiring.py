"""The pieces the composition root (app.py) builds in more than one call, each named for what it returns: the
Genesys client, the store, the engine's timings and its push, and the Slack side in two halves (its clients, which
the engine reads through, then the Bolt app, whose listeners call the engine).
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from config import ConfigError, GenesysSettings, ServiceSettings
from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, NotificationPool, SharedBudget
from handlers.app import SlackAuthorization, build_slack_app, verify_bot_token
from handlers.events import EventObserver
from handlers.home import HomeTab
from slack_directory import SlackDirectory, StoreInstallationStore, StoreOAuthStateStore, WorkspaceClients
from slack_directory.directory import SlackCallObserver
from slack_directory.installations import Allowed
from store import Store, StoreError, open_store
from sync.engine import EngineSettings, PushFactory, SyncEngine
from sync.render import SlackText
from sync.workspaces import Uninstalls, bootstrap_in_background


def genesys_client(settings: GenesysSettings, endpoints: GenesysEndpoints, *,
                   shared_budget: SharedBudget | None = None, stop: threading.Event | None = None,
                   **options: Any) -> GenesysClient:
    """The process's one Genesys client; `shared_budget` when replicas share the request budget; `stop` cuts its
    waits (retry back-offs, the rate limit) short when set, so a stopping app does not sit out a Retry-After;
    `options` go to GenesysClient (check's retry policy and timeout)."""
    credentials = ClientCredentials(settings.client_id, settings.client_secret)
    return GenesysClient(credentials, endpoints, requests_per_minute=settings.requests_per_minute,
                         shared_budget=shared_budget, sleep=stop.wait if stop is not None else time.sleep, **options)


def store(database_url: str) -> Store:
    """The store at DATABASE_URL, migrated; one that cannot be opened is a settings problem naming DATABASE_URL."""
    try:
        return open_store(database_url)
    except StoreError as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None


def engine_settings(service: ServiceSettings) -> EngineSettings:
    """The engine's timings from the service settings (retention is set in days)."""
    return EngineSettings(poll_interval_s=service.poll_interval_s, refresh_interval_s=service.refresh_interval_s,
                          audit_retention_s=service.audit_retention_days * 86400.0,
                          event_retention_s=service.event_retention_days * 86400.0,
                          push_poll_interval_s=service.push_poll_interval_s)


def push(service: ServiceSettings, genesys: GenesysClient) -> PushFactory | None:
    """Genesys' notifications through this client (its token and request budget), unless GENESYS_PUSH is off."""
    return functools.partial(NotificationPool, genesys) if service.push else None


@dataclass(frozen=True, slots=True)
class SlackClients:
    """The Slack Web API side, built before the engine: Bolt's client and the directory the engine reads users from."""

    bolt: WebClient
    """One workspace: the bot token's, which the directory uses too. OAuth: no token (Bolt gets each request's from
    the installation), and the directory uses each workspace's bot token."""
    directory: SlackDirectory
    allowed: Allowed
    """SLACK_ALLOWED_TEAMS as a test (every workspace when it is empty)."""


def slack_clients(service: ServiceSettings, store: Store, observer: SlackCallObserver | None = None) -> SlackClients:
    """Bolt's Web API client and the engine's Slack directory, for one workspace or for OAuth installations;
    `observer` counts the directory's calls (metrics)."""
    bolt = SlackDirectory.web_client(service.bot_token, service.api_url)
    allowed = service.allowed_teams.allows if service.allowed_teams is not None else (lambda *workspace: True)
    if service.oauth is None:
        return SlackClients(bolt, SlackDirectory(lambda team_id: bolt, observer=observer), allowed)
    # The engine looks tokens up through a view of the installations with no callbacks: the callbacks of Bolt's
    # (slack_side) call the engine, which does not exist yet.
    tokens = WorkspaceClients(StoreInstallationStore(store, allowed=allowed),
                              functools.partial(SlackDirectory.web_client, base_url=service.api_url))
    return SlackClients(bolt, SlackDirectory(tokens, observer=observer), allowed)


@dataclass(frozen=True, slots=True)
class SlackSide:
    """The Bolt app with its listeners, and how Slack reaches it."""

    app: App
    authorization: SlackAuthorization
    installations: StoreInstallationStore | None
    """OAuth: the installations, whose install and uninstall call the engine. None: one workspace."""
    socket_mode: SocketModeHandler | None
    """Set when SLACK_APP_TOKEN is: events come over its WebSocket."""
    http: SlackRequestHandler | None
    """Bolt behind POST /slack/events and the OAuth install pages; None in Socket Mode without OAuth."""


def slack_side(service: ServiceSettings, store: Store, engine: SyncEngine, clients: SlackClients, *,
               event_observer: EventObserver | None = None, render: SlackText | None = None,
               home_tab: HomeTab | None = None) -> SlackSide:
    """The Bolt app with every listener handing work to `engine` (and publishing the App Home through `home_tab`);
    one workspace: its bot token checked first. `event_observer` counts the user events (metrics); `render` words
    the slash command's answers (SlackText for SYNC_TARGET and the mapping's key prefix)."""
    installations = oauth_states = None
    if service.oauth is not None:
        installations = StoreInstallationStore(
            store, on_installed=functools.partial(bootstrap_in_background, engine),
            on_uninstalled=engine.forget_workspace, allowed=clients.allowed)
        oauth_states = StoreOAuthStateStore(store)
    authorization = SlackAuthorization(verify_bot_token(clients.bolt, service) if service.oauth is None else None)
    app = build_slack_app(service, engine, clients.bolt, installations=installations, oauth_states=oauth_states,
                          uninstalled=Uninstalls(engine, installations, token_revoked=authorization.revoke),
                          event_observer=event_observer, render=render, home_tab=home_tab)
    socket_mode = SocketModeHandler(app, service.app_token) if service.app_token else None
    # Socket Mode brings events over its WebSocket; HTTP is still needed for the OAuth install pages.
    http = SlackRequestHandler(app) if socket_mode is None or service.oauth is not None else None
    return SlackSide(app, authorization, installations, socket_mode, http)
