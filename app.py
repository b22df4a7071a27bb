"""slack-genesys-sync: the composition root. Builds everything a command runs on; cli/ reads the command line and
the settings each command needs."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier

import cli.main
from config import ConfigError, GenesysSettings, ServiceSettings
from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, SharedBudget
from handlers import commands, errors, events, install, workspaces
from slack_directory import SlackDirectory, StoreInstallationStore, StoreOAuthStateStore, WorkspaceClients
from store import Store, StoreError, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from sync.render import SlackText
from sync.shared_budget import StoreBudget
from web import HealthReport, wsgi_application
from web import server as web_server

log = logging.getLogger("app")


def build_genesys_client(settings: GenesysSettings, endpoints: GenesysEndpoints, *,
                         shared_budget: SharedBudget | None = None, stop: threading.Event | None = None,
                         **options: Any) -> GenesysClient:
    """The process's one Genesys client; `shared_budget` when replicas share the request budget; `stop` cuts its
    waits (retry back-offs, the rate limit) short when set, so a stopping app does not sit out a Retry-After;
    `options` go to GenesysClient (check's retry policy and timeout)."""
    credentials = ClientCredentials(settings.client_id, settings.client_secret)
    return GenesysClient(credentials, endpoints, requests_per_minute=settings.requests_per_minute,
                         shared_budget=shared_budget, sleep=stop.wait if stop is not None else time.sleep, **options)


BOT_SCOPES = ("commands", "users:read", "users:read.email", "users.profile:read")
"""The bot scopes the OAuth install asks for; manifest.yml lists the same (a test checks)."""


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who the bot token is, as auth.test answered at start (one workspace)."""

    team_id: str
    team: str
    bot_user_id: str
    enterprise_id: str | None = None


class SlackAuthorization:
    """Whether Slack requests can be authorized now: the identity verified at start (one workspace) and whether
    the workspace has since uninstalled the app or revoked its token. OAuth: each request's installation."""

    def __init__(self, identity: SlackIdentity | None) -> None:
        self.identity = identity
        self._revoked = threading.Event()

    def revoke(self) -> None:
        self._revoked.set()

    def health(self) -> dict[str, object]:
        if self.identity is None:
            return {"ok": True, "auth": "each workspace's installation (OAuth)"}
        if self._revoked.is_set():
            return {"ok": False, "workspace": self.identity.team_id,
                    "detail": "the app was uninstalled or its bot token revoked; reinstall it and update "
                              "SLACK_BOT_TOKEN"}
        return {"ok": True, "workspace": self.identity.team_id, "auth": "bot token verified at start (auth.test)"}


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
        raise ConfigError(f"SLACK_API_URL: cannot reach Slack at {where} ({_reason(error)}); check the network "
                          "or the URL") from None
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


def build_slack_app(service: ServiceSettings, engine: SyncEngine, client: WebClient, *,
                    authorization: SlackAuthorization,
                    installations: StoreInstallationStore | None = None,
                    oauth_states: StoreOAuthStateStore | None = None) -> App:
    """The Bolt app with every listener registered, configured from `service` alone: every value Bolt needs is
    passed here (the SLACK_* variables are withheld from it), so the mode is the one the settings decide.
    One workspace: `client` carries the bot token verified at start. OAuth (`service.oauth`): installs at
    /slack/install, kept in `installations`, tokens looked up per request."""
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
        app = App(client=client, signing_secret=service.signing_secret, process_before_response=True,
                  oauth_settings=oauth_settings, installation_store=installations,
                  token_verification_enabled=False, logger=bolt_logger())
    except BoltError as error:
        raise ConfigError(f"SLACK_CLIENT_ID: Bolt refused the OAuth settings ({error}); check them") from None

    def uninstalled(enterprise_id: str | None, team_id: str) -> None:
        if installations is not None:  # OAuth: forgetting the installation forgets the workspace (on_uninstalled)
            installations.delete_all(enterprise_id=enterprise_id, team_id=team_id)
        else:
            log.error("the app was uninstalled from workspace %s or its bot token revoked: SLACK_BOT_TOKEN no "
                      "longer works there; reinstall the app and update the token", team_id)
            authorization.revoke()
            engine.forget_workspace(team_id)

    errors.register(app)
    if service.allowed_teams is not None:
        workspaces.register(app, service.allowed_teams.allows)
    events.register(app, engine, uninstalled=uninstalled)
    commands.register(app, engine, admins=service.admins, render=SlackText())
    return app


def bolt_logger() -> logging.Logger:
    """The logger Bolt's own loggers copy their level from when it builds them (without one they copy the root's).
    Bolt logs a refused request's whole body at INFO, e-mail addresses and any newline included; its warnings show."""
    logger = logging.getLogger("slack_bolt")
    logger.setLevel(max(logging.WARNING, logging.getLogger().level))
    return logger


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return f"{type(error).__name__}: {reason}"


def workspaces_to_sync(authorization: SlackAuthorization, installations: StoreInstallationStore | None, *,
                       not_allowed: Callable[[str], None] = lambda team_id: None) -> list[str]:
    """The workspaces whose first-start sync may be due: every installed one SLACK_ALLOWED_TEAMS allows (OAuth),
    or the token's own. `not_allowed(team_id)` for each installed one it no longer allows, after a log line."""
    if installations is not None:
        due = []
        for enterprise_id, team_id in installations.installed_workspaces():
            if not team_id:
                continue
            if installations.allows(enterprise_id or None, team_id):
                due.append(team_id)
                continue
            log.warning("Slack workspace %s is installed but not in SLACK_ALLOWED_TEAMS: not synced, its stored "
                        "profiles are forgotten and its requests ignored (add its id and restart to sync it again)",
                        team_id)
            not_allowed(team_id)
        return due
    return [authorization.identity.team_id] if authorization.identity is not None else []


def health_report(store: Store, engine: SyncEngine, socket_mode: SocketModeHandler | None,
                  authorization: SlackAuthorization,
                  installations: StoreInstallationStore | None = None, *, details: bool = True,
                  client_ids: Sequence[str] = ()) -> HealthReport:
    """/healthz; without `details` (HEALTH_DETAILS) it names neither where the database is (path, user, host) nor
    the OAuth `client_ids`, since anyone who reaches the port may read it."""
    database = store.health()
    poll_ok, poll_error = engine.genesys_status()
    if not details:
        for client_id in (client_id for client_id in client_ids if client_id):
            poll_error = poll_error.replace(client_id, "***")
    slack: dict[str, object] = {"mode": "http", **authorization.health()}
    if installations is not None and database.ok:
        slack["workspaces"] = len(installations.installed_workspaces())
    if socket_mode is not None:
        connected = bool(socket_mode.client.is_connected())
        slack["mode"] = "socket"
        slack["connection"] = "connected" if connected else "not connected"
        slack["ok"] = bool(slack["ok"]) and connected
    # Slack users not synced because their Genesys user is linked to another Slack user (/genesys-sync status).
    links: dict[str, object] = {"detail": "the database is unreachable"}
    # The database may stop answering after its part said ok: the links part then keeps its detail.
    with contextlib.suppress(StoreError):
        if database.ok:
            links = {"conflicts": store.link_conflict_count()}
    return HealthReport({
        "database": {"ok": database.ok, "detail": database.detail if details else database.brief},
        "engine": engine.liveness().report(),
        "links": links,
        "genesys": {"ok": poll_ok, "detail": poll_error or ("polling" if poll_ok else "not polled yet")
                    if engine.polling or poll_ok is not None else "another replica polls"},
        "slack": slack,
    })


def describe_slack_mode(service: ServiceSettings, authorization: SlackAuthorization) -> str:
    """The one start-up line that says which Slack mode the settings chose."""
    transport = "Socket Mode" if service.socket_mode else f"HTTP on port {service.port}"
    if authorization.identity is None:
        allowed = service.allowed_teams.describe() if service.allowed_teams is not None else "any workspace"
        return (f"Slack: installable into many workspaces through OAuth (/slack/install), allowed: {allowed}; "
                f"events over {transport}")
    identity = authorization.identity
    return (f"Slack: one workspace, {identity.team} ({identity.team_id}), bot user {identity.bot_user_id}, "
            f"events over {transport}")


def serve(service: ServiceSettings, genesys_settings: GenesysSettings, endpoints: GenesysEndpoints,
          rules: AttributeRules) -> int:
    """Run the Slack app and the sync engine until SIGTERM or SIGINT."""
    try:
        store = open_store(service.database_url)
    except StoreError as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None
    stop = threading.Event()
    genesys = build_genesys_client(genesys_settings, endpoints, stop=stop,
                                   shared_budget=StoreBudget(store, genesys_settings.requests_per_minute))
    # One workspace: one client, Bolt's too. OAuth: Bolt's has no token (it gets each request's from the
    # installation), and the engine's reads use each workspace's bot token.
    slack_client = SlackDirectory.web_client(service.bot_token, service.api_url)
    installations = oauth_states = None
    if service.oauth is not None:
        installations = StoreInstallationStore(store, on_installed=lambda team_id: start_bootstrap(team_id),
                                               on_uninstalled=lambda team_id: engine.forget_workspace(team_id),
                                               allowed=service.allowed_teams.allows if service.allowed_teams
                                               else lambda enterprise_id, team_id: True)
        oauth_states = StoreOAuthStateStore(store)
        directory = SlackDirectory(WorkspaceClients(
            installations, lambda token: SlackDirectory.web_client(token, service.api_url)))
    else:
        directory = SlackDirectory(lambda team_id: slack_client)
    engine = SyncEngine(store=store, genesys=genesys, slack=directory, rules=rules, settings=EngineSettings(
        poll_interval_s=service.poll_interval_s, refresh_interval_s=service.refresh_interval_s,
        audit_retention_s=service.audit_retention_days * 86400.0,
        event_retention_s=service.event_retention_days * 86400.0))

    def start_bootstrap(team_id: str) -> None:
        # Off the request thread: listing a big workspace takes a while, and Slack waits for the redirect page.
        threading.Thread(target=engine.bootstrap, args=(team_id,), name=f"bootstrap-{team_id}", daemon=True).start()

    try:
        authorization = SlackAuthorization(
            verify_bot_token(slack_client, service) if service.oauth is None else None)
        app = build_slack_app(service, engine, slack_client, authorization=authorization,
                              installations=installations, oauth_states=oauth_states)
        socket_mode = SocketModeHandler(app, service.app_token) if service.app_token else None
        # Socket Mode brings events over its WebSocket; HTTP is still needed for the OAuth install pages.
        slack_http = SlackRequestHandler(app) if socket_mode is None or service.oauth is not None else None
        client_ids = (genesys_settings.client_id, service.oauth.client_id if service.oauth else "")
        web = wsgi_application(slack_http, lambda: health_report(store, engine, socket_mode, authorization,
                                                                   installations, details=service.health_details,
                                                                   client_ids=client_ids),
                               verifier=SignatureVerifier(service.signing_secret) if slack_http else None)
        try:
            # 8 threads: on 2 cores more threads only contend for the GIL (measured: p99 worse at 16 in a burst).
            server = web_server.create(web, port=service.port, threads=8, ident="slack-genesys-sync")
        except OSError as error:
            raise ConfigError(f"PORT: cannot listen on port {service.port} ({_reason(error)})") from None
    except ConfigError:
        store.close()
        genesys.close()
        raise
    def shut_down(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()
        web_server.stop(server)

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    log.info("%s", describe_slack_mode(service, authorization))
    if service.oauth is not None and service.allowed_teams is not None and service.allowed_teams.any_team:
        log.warning("SLACK_ALLOWED_TEAMS=*: any Slack workspace can install the app, and its members are matched "
                    "to your Genesys Cloud users by e-mail; list the allowed workspace ids instead to restrict it")
    for team_id in workspaces_to_sync(authorization, installations, not_allowed=engine.forget_workspace):
        start_bootstrap(team_id)
    worker = threading.Thread(target=engine.run, args=(stop,), name="sync-engine", daemon=True)
    worker.start()
    if socket_mode is not None:
        try:
            socket_mode.connect()
        except (OSError, SlackClientError) as error:
            stop.set()
            worker.join(timeout=10)
            server.close()
            genesys.close()
            store.close()
            raise ConfigError(f"SLACK_APP_TOKEN: could not open the Socket Mode connection ({_reason(error)}); "
                              "check the app-level token (scope connections:write)") from None
        log.info("connected to Slack in Socket Mode; health on port %d", service.port)
    else:
        log.info("serving Slack requests on port %d (POST /slack/events, GET /healthz)", service.port)
    try:
        server.run()
    except OSError:
        if not stop.is_set():
            raise
    finally:
        stop.set()
        if socket_mode is not None:
            socket_mode.close()
        worker.join(timeout=10)
        genesys.close()
        store.close()
        log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main.main(sys.argv[1:] if argv is None else argv, serve=serve, genesys_client=build_genesys_client)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and friends: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:  # Ctrl-C before a command set its own handler (while modules load): no traceback
        sys.exit(130)
