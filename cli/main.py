"""`python app.py [COMMAND] …`: parse the command line, read the settings that command needs (every problem named
in one answer, exit 2), set up logging, run the command and return its exit status.

What the commands build comes from the composition root (`app.py`): `serve` itself and the Genesys client.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from cli import check as check_command
from cli import dead_letters as dead_letters_command
from cli.arguments import parse_arguments
from cli.check import check
from cli.preview import EXIT_UNUSABLE, PreviewRequest, preview, stdin_bytes
from cli.push import PushRequest, push
from cli.settings import asked_for, read_command_settings
from config import (
    ConfigError,
    GenesysSettings,
    ServiceSettings,
    configure_logging,
    describe_problems,
    read_environment,
    secrets_of,
    withhold_from_libraries,
)
from genesys import GenesysClient, GenesysEndpoints
from store import Store
from sync import AttributeRules, SyncTarget

Serve = Callable[[ServiceSettings, GenesysSettings, GenesysEndpoints, AttributeRules, SyncTarget], int]
"""Runs the Slack app and the sync engine until stopped; returns the exit status."""


OpenStore = Callable[[str], Store]
"""Opens the store at DATABASE_URL; one that cannot be opened raises ConfigError naming DATABASE_URL."""


class GenesysClientFactory(Protocol):
    """Builds the Genesys client from its settings; `options` go to GenesysClient (check's retries and timeout)."""

    def __call__(self, settings: GenesysSettings, endpoints: GenesysEndpoints, **options: Any) -> GenesysClient: ...


def main(argv: Sequence[str], *, serve: Serve, genesys_client: GenesysClientFactory, open_store: OpenStore) -> int:
    arguments = parse_arguments(argv)
    command = arguments.command = arguments.command or "serve"
    if command == "demo":  # before .env and the settings: the demo needs none and reads none
        from cli.demo import run as run_demo  # imports localdev/, which the production image leaves out

        return run_demo(arguments.keep, out=sys.stdout, err=sys.stderr)
    try:
        environment = read_environment(Path.cwd())
    except ConfigError as error:
        print(f"{command}: configuration: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    withhold_from_libraries()
    try:
        rules_file = Path(arguments.config) if getattr(arguments, "config", None) else None
        needed = read_command_settings(
            environment.values, service=command == "serve", genesys=command in ("serve", "check", "push"),
            rules_file=rules_file, rules=command in ("serve", "preview", "push"), database=command == "dead-letters")
        configure_logging(needed.settings.log_level, secrets_of(needed.service, needed.genesys, needed.database_url),
                          needed.settings.log_format)
        if command == "dead-letters":
            return _dead_letters(arguments, open_store(asked_for(needed.database_url)))
        if command == "check":
            endpoints = asked_for(needed.endpoints)
            with genesys_client(asked_for(needed.genesys), endpoints, retry_policy=check_command.RETRY_POLICY,
                                timeout=check_command.timeout(arguments.timeout)) as client:
                return check(client, endpoints, out=sys.stdout, customer=needed.target.customer)
        rules = asked_for(needed.rules)
        if command == "serve":
            return serve(asked_for(needed.service), asked_for(needed.genesys), asked_for(needed.endpoints), rules,
                         needed.target)
        if command == "preview":
            request = PreviewRequest(arguments.path, arguments.team_profile, arguments.json, arguments.verbose)
            return preview(request, rules, stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr, target=needed.target)
        with genesys_client(asked_for(needed.genesys), asked_for(needed.endpoints)) as client:
            return push(PushRequest(arguments.path, arguments.email, arguments.team_profile), rules, client,
                        stdin=stdin_bytes(), out=sys.stdout, err=sys.stderr)
    except ConfigError as error:
        print(describe_problems(command, error, environment), file=sys.stderr)
        return EXIT_UNUSABLE


def _dead_letters(arguments: argparse.Namespace, store: Store) -> int:
    with contextlib.closing(store):
        if arguments.action == "retry":
            ids = None if arguments.all else arguments.ids
            return dead_letters_command.retry(store, ids, out=sys.stdout, err=sys.stderr)
        return dead_letters_command.list_dead_letters(store, limit=arguments.limit, out=sys.stdout, err=sys.stderr)
