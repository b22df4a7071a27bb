"""slack-genesys-sync: the composition root. Settings in, objects built, listeners registered, serve.

The command line and the settings each command reads are cli/'s; this file builds what the commands run on.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier

import cli.main
from config import ConfigError, GenesysSettings, ServiceSettings, describe_cause
from genesys import ClientCredentials, GenesysClient, GenesysEndpoints, NotificationPool, SharedBudget
from handlers.app import SlackAuthorization, build_slack_app, connect_socket_mode, log_slack_mode, verify_bot_token
from slack_directory import SlackDirectory, StoreInstallationStore, StoreOAuthStateStore, WorkspaceClients
from store import Store, StoreError, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from sync.shared_budget import StoreBudget
from sync.workspaces import Uninstalls, bootstrap_in_background, workspaces_to_sync
from web import WsgiApp, wsgi_application
from web import server as web_server
from web.health import health_report

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


def serve(service: ServiceSettings, genesys_settings: GenesysSettings, endpoints: GenesysEndpoints,
          rules: AttributeRules) -> int:
    """Run the Slack app and the sync engine until SIGTERM or SIGINT."""
    stop, serving = threading.Event(), threading.Event()
    # Whatever fails, everything opened so far is closed, in the reverse order: the one clean-up path.
    with contextlib.ExitStack() as lifecycle:
        lifecycle.callback(_log_stopped, serving)  # last: a run that served ends its log with "stopped"
        store = lifecycle.enter_context(contextlib.closing(_open_store(service.database_url)))
        genesys = lifecycle.enter_context(build_genesys_client(
            genesys_settings, endpoints, stop=stop,
            shared_budget=StoreBudget(store, genesys_settings.requests_per_minute)))
        # One workspace: one client, Bolt's too. OAuth: Bolt's has no token (it gets each request's from the
        # installation), and the engine's reads use each workspace's bot token.
        slack_client = SlackDirectory.web_client(service.bot_token, service.api_url)
        allowed = service.allowed_teams.allows if service.allowed_teams is not None else (lambda *workspace: True)
        if service.oauth is not None:
            # The engine looks tokens up through a view of the installations with no callbacks: the callbacks of
            # Bolt's (below) call the engine, which does not exist yet.
            tokens = WorkspaceClients(StoreInstallationStore(store, allowed=allowed),
                                      functools.partial(SlackDirectory.web_client, base_url=service.api_url))
            directory = SlackDirectory(tokens)
        else:
            directory = SlackDirectory(lambda team_id: slack_client)
        engine = SyncEngine(store=store, genesys=genesys, slack=directory, rules=rules, settings=EngineSettings(
            poll_interval_s=service.poll_interval_s, refresh_interval_s=service.refresh_interval_s,
            audit_retention_s=service.audit_retention_days * 86400.0,
            event_retention_s=service.event_retention_days * 86400.0,
            push_poll_interval_s=service.push_poll_interval_s),
            push=functools.partial(NotificationPool, genesys) if service.push else None)
        installations = oauth_states = None
        if service.oauth is not None:
            installations = StoreInstallationStore(
                store, on_installed=functools.partial(bootstrap_in_background, engine),
                on_uninstalled=engine.forget_workspace, allowed=allowed)
            oauth_states = StoreOAuthStateStore(store)
        authorization = SlackAuthorization(verify_bot_token(slack_client, service) if service.oauth is None else None)
        app = build_slack_app(service, engine, slack_client, installations=installations, oauth_states=oauth_states,
                              uninstalled=Uninstalls(engine, installations, token_revoked=authorization.revoke))
        socket_mode = SocketModeHandler(app, service.app_token) if service.app_token else None
        # Socket Mode brings events over its WebSocket; HTTP is still needed for the OAuth install pages.
        slack_http = SlackRequestHandler(app) if socket_mode is None or service.oauth is not None else None
        health = functools.partial(
            health_report, store, engine, socket_mode, authorization, installations, details=service.health_details,
            client_ids=(genesys_settings.client_id, service.oauth.client_id if service.oauth else ""))
        web = wsgi_application(slack_http, health,
                               verifier=SignatureVerifier(service.signing_secret) if slack_http else None)
        server = _listen(web, service.port)
        lifecycle.callback(server.close)

        def shut_down(signum: int, _frame: object) -> None:
            log.info("received %s; stopping", signal.Signals(signum).name)
            stop.set()
            web_server.stop(server)

        signal.signal(signal.SIGTERM, shut_down)
        signal.signal(signal.SIGINT, shut_down)
        log_slack_mode(service, authorization)
        token_team_id = authorization.identity.team_id if authorization.identity is not None else None
        for team_id in workspaces_to_sync(installations, token_team_id, not_allowed=engine.forget_workspace):
            bootstrap_in_background(engine, team_id)
        worker = threading.Thread(target=engine.run, args=(stop,), name="sync-engine", daemon=True)
        worker.start()
        lifecycle.callback(worker.join, timeout=10)
        lifecycle.callback(stop.set)
        if socket_mode is not None:
            connect_socket_mode(socket_mode)
            lifecycle.callback(socket_mode.close)
            log.info("connected to Slack in Socket Mode; health on port %d", service.port)
        else:
            log.info("serving Slack requests on port %d (POST /slack/events, GET /healthz)", service.port)
        serving.set()
        try:
            server.run()
        except OSError:
            if not stop.is_set():
                raise
    return 0


def _open_store(database_url: str) -> Store:
    try:
        return open_store(database_url)
    except StoreError as error:
        raise ConfigError(f"DATABASE_URL: {error}") from None


def _listen(web: WsgiApp, port: int) -> Any:
    try:
        # 8 threads: on 2 cores more threads only contend for the GIL (measured: p99 worse at 16 in a burst).
        return web_server.create(web, port=port, threads=8, ident="slack-genesys-sync")
    except OSError as error:
        raise ConfigError(f"PORT: cannot listen on port {port} ({describe_cause(error)})") from None


def _log_stopped(serving: threading.Event) -> None:
    if serving.is_set():  # a start that failed said why instead
        log.info("stopped")


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
