"""slack-genesys-sync: the composition root. Reads settings once, builds everything, runs a command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dotenv import load_dotenv
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from waitress.server import create_server

from cli.check import check
from cli.preview import EXIT_UNUSABLE, PreviewRequest, preview, stdin_bytes
from cli.push import PushRequest, push
from config import (
    ConfigError,
    GenesysSettings,
    ServiceSettings,
    SettingsTables,
    configure_logging,
    environment,
    read_genesys_settings,
    read_service_settings,
    read_settings,
    read_settings_file,
)
from genesys import (
    ClientCredentials,
    GenesysClient,
    GenesysEndpoints,
    GenesysSettingsError,
    SharedBudget,
    VoiceSafeLimits,
    VoiceSafeSettingsError,
    endpoints_for,
)
from handlers import commands, errors, events
from profiles import AttributeMapping, FlattenLimits, FlattenSettingsError, MappingSettingsError
from slack_directory import SlackDirectory, StoreInstallationStore, StoreOAuthStateStore, WorkspaceClients
from store import Store, StoreError, open_store
from sync import AttributeRules
from sync.engine import EngineSettings, SyncEngine
from sync.render import SlackText
from sync.shared_budget import StoreBudget
from web import HealthReport, wsgi_application

log = logging.getLogger("app")


_SettingsErrors = (MappingSettingsError, FlattenSettingsError, VoiceSafeSettingsError)
T = TypeVar("T")


def _from_table(settings_file: SettingsTables, name: str, build: Callable[[Mapping[str, Any]], T]) -> T:
    """Build one table's value; its package's settings error becomes a ConfigError naming file and setting."""
    try:
        return build(settings_file.table(name))
    except _SettingsErrors as error:
        raise ConfigError(f"{settings_file.where(name, error.setting)}: {error.problem}") from None


def build_rules(settings_file: SettingsTables) -> AttributeRules:
    """The attribute rules from the settings file's [attributes], [flatten] and [voice_safe] tables."""
    mapping = _from_table(settings_file, "attributes", AttributeMapping.from_table)
    flatten_limits = _from_table(settings_file, "flatten", FlattenLimits.from_table)
    voice_safe = _from_table(settings_file, "voice_safe", VoiceSafeLimits.from_table)
    if voice_safe.max_value_chars > flatten_limits.max_value_chars:
        raise ConfigError(
            f"{settings_file.where('voice_safe', 'max_value_chars')}: {voice_safe.max_value_chars:,} is above"
            f" [flatten] max_value_chars ({flatten_limits.max_value_chars:,}); raise that one too"
        )
    return AttributeRules(mapping, flatten_limits, voice_safe)


def genesys_endpoints(settings: GenesysSettings) -> GenesysEndpoints:
    try:
        return endpoints_for(settings.region, settings.api_url, settings.login_url)
    except GenesysSettingsError as error:
        raise ConfigError(str(error)) from None


def build_genesys_client(settings: GenesysSettings, endpoints: GenesysEndpoints, *,
                         shared_budget: SharedBudget | None = None,
                         stop: threading.Event | None = None) -> GenesysClient:
    """The process's one Genesys client; `shared_budget` when replicas share the request budget; `stop` cuts its
    waits (retry back-offs, the rate limit) short when set, so a stopping app does not sit out a Retry-After."""
    credentials = ClientCredentials(settings.client_id, settings.client_secret)
    return GenesysClient(credentials, endpoints, requests_per_minute=settings.requests_per_minute,
                         shared_budget=shared_budget, sleep=stop.wait if stop is not None else time.sleep)


class _TokenFromEnvironmentNotice(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN "will be unused" when it also gets a client: the client carries that very
    token, so the warning only misleads operators."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOT_SCOPES = ("commands", "users:read", "users:read.email", "users.profile:read")
"""The bot scopes the OAuth install asks for; manifest.yml lists the same (a test checks)."""


def build_slack_app(service: ServiceSettings, engine: SyncEngine, client: WebClient, *,
                    installations: StoreInstallationStore | None = None,
                    oauth_states: StoreOAuthStateStore | None = None) -> App:
    """The Bolt app with every listener registered. One workspace: the bot token is verified now (auth.test).
    OAuth (`service.oauth`): installs at /slack/install, kept in `installations`, tokens looked up per request."""
    logging.getLogger("slack_bolt.App").addFilter(_TokenFromEnvironmentNotice())
    oauth_settings = None
    if service.oauth is not None:
        if installations is None or oauth_states is None:
            raise ValueError("installing through OAuth needs an installation store and an OAuth state store")
        oauth_settings = OAuthSettings(
            client_id=service.oauth.client_id, client_secret=service.oauth.client_secret, scopes=list(BOT_SCOPES),
            redirect_uri=service.oauth.redirect_uri, installation_store=installations, state_store=oauth_states,
            install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect",
        )
    try:
        # process_before_response: Slack's 200 goes out after a listener recorded the work, so a crash after
        # the answer loses nothing; the slash command does its slow part in a lazy listener after the ack.
        app = App(client=client, signing_secret=service.signing_secret, process_before_response=True,
                  oauth_settings=oauth_settings, installation_store=installations)
    except BoltError as error:
        setting = "SLACK_BOT_TOKEN" if service.oauth is None else "SLACK_CLIENT_ID"
        raise ConfigError(f"{setting}: Slack refused it at start ({error}); check it") from None
    except (OSError, SlackClientError) as error:  # urllib's URLError is an OSError
        where = service.api_url or "https://slack.com/api/"
        raise ConfigError(f"SLACK_API_URL: cannot reach Slack at {where} ({_reason(error)}); check the network "
                          "or the URL") from None

    def uninstalled(enterprise_id: str | None, team_id: str) -> None:
        if installations is not None:  # OAuth: forgetting the installation forgets the workspace (on_uninstalled)
            installations.delete_all(enterprise_id=enterprise_id, team_id=team_id)
        else:
            log.error("the app was uninstalled from workspace %s or its bot token revoked: SLACK_BOT_TOKEN no "
                      "longer works there; reinstall the app and update the token", team_id)
            engine.forget_workspace(team_id)

    errors.register(app)
    events.register(app, engine, uninstalled=uninstalled)
    commands.register(app, engine, admins=service.admins, render=SlackText())
    return app


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return f"{type(error).__name__}: {reason}"


def workspaces_to_sync(client: WebClient, installations: StoreInstallationStore | None) -> list[str]:
    """The workspaces whose first-start sync may be due: every installed one (OAuth), or the token's own."""
    if installations is not None:
        return [team_id for _, team_id in installations.installed_workspaces() if team_id]
    try:
        team_id = client.auth_test().get("team_id")
    except (OSError, SlackClientError) as error:
        log.warning("could not ask Slack which workspace this is (%s); skipping the first-start sync",
                    _reason(error))
        return []
    return [team_id] if isinstance(team_id, str) else []


def health_report(store: Store, engine: SyncEngine, socket_mode: SocketModeHandler | None,
                  installations: StoreInstallationStore | None = None) -> HealthReport:
    database = store.health()
    poll_ok, poll_error = engine.genesys_status()
    slack: dict[str, object] = {"ok": True, "mode": "http"}
    if installations is not None and database.ok:
        slack["workspaces"] = len(installations.installed_workspaces())
    if socket_mode is not None:
        connected = bool(socket_mode.client.is_connected())
        slack |= {"ok": connected, "mode": "socket", "detail": "connected" if connected else "not connected"}
    return HealthReport({
        "database": {"ok": database.ok, "detail": database.detail},
        "genesys": {"ok": poll_ok, "detail": poll_error or ("polling" if poll_ok else "not polled yet")
                    if engine.polling or poll_ok is not None else "another replica polls"},
        "slack": slack,
    })


def serve(settings_tables: SettingsTables) -> int:
    """Run the Slack app and the sync engine until SIGTERM or SIGINT."""
    environ = environment()
    service = read_service_settings(environ)
    genesys_settings = read_genesys_settings(environ)
    rules = build_rules(settings_tables)
    endpoints = genesys_endpoints(genesys_settings)
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
                                               on_uninstalled=lambda team_id: engine.forget_workspace(team_id))
        oauth_states = StoreOAuthStateStore(store)
        directory = SlackDirectory(WorkspaceClients(
            installations, lambda token: SlackDirectory.web_client(token, service.api_url)))
    else:
        directory = SlackDirectory(lambda team_id: slack_client)
    engine = SyncEngine(store=store, genesys=genesys, slack=directory, rules=rules, settings=EngineSettings(
        poll_interval_s=service.poll_interval_s, refresh_interval_s=service.refresh_interval_s,
        retention_s=service.retention_days * 86400.0))

    def start_bootstrap(team_id: str) -> None:
        # Off the request thread: listing a big workspace takes a while, and Slack waits for the redirect page.
        threading.Thread(target=engine.bootstrap, args=(team_id,), name=f"bootstrap-{team_id}", daemon=True).start()

    try:
        app = build_slack_app(service, engine, slack_client, installations=installations, oauth_states=oauth_states)
        socket_mode = SocketModeHandler(app, service.app_token) if service.app_token else None
        # Socket Mode brings events over its WebSocket; HTTP is still needed for the OAuth install pages.
        slack_http = SlackRequestHandler(app) if socket_mode is None or service.oauth is not None else None
        web = wsgi_application(slack_http, lambda: health_report(store, engine, socket_mode, installations))
        try:
            # 8 threads: on 2 cores more threads only contend for the GIL (measured: p99 worse at 16 in a burst).
            server = create_server(web, host="0.0.0.0", port=service.port, threads=8, ident="slack-genesys-sync")
        except OSError as error:
            raise ConfigError(f"PORT: cannot listen on port {service.port} ({_reason(error)})") from None
    except ConfigError:
        store.close()
        genesys.close()
        raise
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" per request under a burst
    # Bolt logs a refused request's whole body at INFO, e-mail addresses included; its warnings still show.
    logging.getLogger("slack_bolt").setLevel(max(logging.WARNING, logging.getLogger().level))

    def shut_down(signum: int, _frame: object) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()
        server.close()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    for team_id in workspaces_to_sync(app.client, installations):
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


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python app.py", description="Keep Slack profiles on Genesys Cloud participant attributes."
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = subcommands.add_parser(
        "preview", help="show the attributes a Slack user object would become (writes nothing)",
        description="Read a Slack user object, event envelope, users.info or users.profile.get response and print "
        "the participant attributes it would become. Exit 0: valid; 1: validation problems; 2: unusable input.",
    )
    write = subcommands.add_parser(
        "push", help="write a Slack user object's attributes to a Genesys user's live participants now",
        description="Flatten and validate the Slack user object at PATH (as preview does) and write it to the live "
        "participants of the Genesys user with that e-mail. Exit 0: written or nothing live; 1: not voice-safe or "
        "rejected by Genesys; 2: unusable input or no such user; 3: Genesys unusable (credentials, permissions, "
        "outage).",
    )
    for command in (show, write):
        command.add_argument("path", metavar="PATH", help="JSON file, or - for standard input")
        command.add_argument(
            "--team-profile", metavar="FILE", help="a team.profile.get response, to key custom fields by label"
        )
        command.add_argument("--config", metavar="FILE",
                             help="settings file (default: $SYNC_SETTINGS_FILE, else ./sync.toml)")
    show.add_argument("--json", action="store_true", help="print exactly the JSON attribute object")
    show.add_argument("--verbose", action="store_true", help="list every field the mapping left out, and why")
    write.add_argument("--email", required=True, metavar="ADDRESS", help="the Genesys user's e-mail address")
    subcommands.add_parser(
        "serve", help="run the Slack app and the sync engine (the default)",
        description="Receive Slack events and /genesys-sync (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on "
        "PORT) and keep every live Genesys participant's attributes up to date.",
    )
    subcommands.add_parser(
        "check", help="check the Genesys credentials and role permissions against the configured org",
        description="Obtain a token and try each call the app needs. Exit 0: all permitted; 1: something missing.",
    )
    subcommands.add_parser("help", help="show this help, or one command's (help COMMAND)")
    return parser.parse_args(_help_as_flag(argv))


def _help_as_flag(argv: Sequence[str]) -> list[str]:
    """`help` and `help COMMAND` become `--help` and `COMMAND --help`, so argparse prints the very same text."""
    if list(argv[:1]) == ["help"]:
        return [*argv[1:2], "--help"]
    return list(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    arguments.command = arguments.command or "serve"
    load_dotenv(Path.cwd() / ".env")  # the working directory's .env; real environment variables win
    try:
        settings = read_settings(environment())
        configure_logging(settings.log_level)
        if arguments.command == "check":
            genesys = read_genesys_settings(environment())
            endpoints = genesys_endpoints(genesys)
            with build_genesys_client(genesys, endpoints) as client:
                return check(client, endpoints, out=sys.stdout)
        if arguments.command == "serve":
            return serve(read_settings_file(settings.settings_file))
        settings_path = Path(arguments.config) if arguments.config is not None else settings.settings_file
        rules = build_rules(read_settings_file(settings_path))
        if arguments.command == "preview":
            request = PreviewRequest(arguments.path, arguments.team_profile, arguments.json,
                                     arguments.verbose)
            return preview(request, rules, stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)
        genesys = read_genesys_settings(environment())
        endpoints = genesys_endpoints(genesys)
        with build_genesys_client(genesys, endpoints) as client:
            return push(PushRequest(arguments.path, arguments.email, arguments.team_profile), rules, client,
                        stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)
    except ConfigError as error:
        print(f"{arguments.command}: configuration: {error}", file=sys.stderr)
        return EXIT_UNUSABLE


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and friends: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
