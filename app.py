"""slack-genesys-sync: the composition root. Settings in, objects built, listeners registered, serve.

The command line and the settings each command reads are cli/'s; the pieces built in more than one call, wiring's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from slack_sdk.signature import SignatureVerifier

import cli.main
import wiring
from config import GenesysSettings, ServiceSettings
from genesys import GenesysEndpoints
from handlers.app import connect_socket_mode, log_slack_mode
from handlers.home import HomeTab
from metrics import AppMetrics
from sync import AttributeRules, SyncTarget
from sync.engine import SyncEngine
from sync.home import HomeReader
from sync.render import SlackText
from sync.shared_budget import StoreBudget
from sync.workspaces import bootstrap_in_background, workspaces_to_sync
from web import server as web_server
from web import wsgi_application
from web.health import health_report

log = logging.getLogger("app")


def serve(service: ServiceSettings, genesys_settings: GenesysSettings, endpoints: GenesysEndpoints,
          rules: AttributeRules, target: SyncTarget) -> int:
    """Run the Slack app and the sync engine until SIGTERM or SIGINT."""
    stop, serving = threading.Event(), threading.Event()
    # Whatever fails, everything opened so far is closed, in the reverse order: the one clean-up path.
    with contextlib.ExitStack() as lifecycle:
        lifecycle.callback(_log_stopped, serving)  # last: a run that served ends its log with "stopped"
        metrics = AppMetrics(CollectorRegistry())  # this process's; each package reports through its observer seam
        store = lifecycle.enter_context(contextlib.closing(wiring.store(service.database_url)))
        budget = StoreBudget(store, genesys_settings.requests_per_minute)  # shared by the replicas on this store
        genesys = lifecycle.enter_context(wiring.genesys_client(genesys_settings, endpoints, shared_budget=budget,
                                                                stop=stop, observer=metrics))
        slack_clients = wiring.slack_clients(service, store, observer=metrics)
        home_tab = HomeTab(slack_clients.directory.publish_home)  # the App Home, refreshed as the engine syncs
        engine = SyncEngine(store=store, genesys=genesys, slack=slack_clients.directory, rules=rules,
                            settings=wiring.engine_settings(service), push=wiring.push(service, genesys),
                            observer=metrics, target=target, on_person_synced=home_tab.person_synced)
        metrics.watch(store, engine)
        home_tab.start(HomeReader(store, engine, budget=budget.use))
        lifecycle.callback(home_tab.stop)
        slack = wiring.slack_side(service, store, engine, slack_clients, event_observer=metrics,
                                  render=SlackText(target, rules.mapping.prefix), home_tab=home_tab)
        health = functools.partial(
            health_report, store, engine, slack.socket_mode, slack.authorization, slack.installations,
            details=service.health_details,
            client_ids=(genesys_settings.client_id, service.oauth.client_id if service.oauth else ""))
        verifier = SignatureVerifier(service.signing_secret) if slack.http else None
        server = web_server.listen(wsgi_application(slack.http, health, verifier=verifier, metrics=metrics),
                                   service.port)
        lifecycle.callback(server.close)
        web_server.stop_on_signals(server, stop)
        log_slack_mode(service, slack.authorization)
        identity = slack.authorization.identity
        for team_id in workspaces_to_sync(slack.installations, identity.team_id if identity is not None else None,
                                          not_allowed=engine.forget_workspace):
            bootstrap_in_background(engine, team_id)
        worker = threading.Thread(target=engine.run, args=(stop,), name="sync-engine", daemon=True)
        worker.start()
        lifecycle.callback(worker.join, timeout=10)
        lifecycle.callback(stop.set)
        if slack.socket_mode is not None:
            connect_socket_mode(slack.socket_mode)
            lifecycle.callback(slack.socket_mode.close)
            log.info("connected to Slack in Socket Mode; health and metrics on port %d", service.port)
        else:
            log.info("serving Slack requests on port %d (POST /slack/events, GET /healthz, GET /metrics)",
                     service.port)
        serving.set()
        web_server.run(server, stop)
    return 0


def _log_stopped(serving: threading.Event) -> None:
    if serving.is_set():  # a start that failed said why instead
        log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main.main(sys.argv[1:] if argv is None else argv, serve=serve, genesys_client=wiring.genesys_client,
                         open_store=wiring.store)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` and friends: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:  # Ctrl-C before a command set its own handler (while modules load): no traceback
        sys.exit(130)
